import { chatHandler } from "./handler.ts";

Deno.serve(chatHandler());
