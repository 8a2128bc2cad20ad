import { enhanceHandler } from "./handler.ts";

Deno.serve(enhanceHandler());
