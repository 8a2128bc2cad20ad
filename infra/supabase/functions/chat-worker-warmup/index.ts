import { warmupHandler } from "./handler.ts";

Deno.serve(warmupHandler());
