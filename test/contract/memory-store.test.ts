import { MemoryStore } from "../../server/store/memory/memory-store.js";
import { storeContract } from "./store.contract.js";

storeContract("memory", () => Promise.resolve(new MemoryStore()));
