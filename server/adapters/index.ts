import type { AdapterModule } from "./contract.js";
import { dialogflow } from "./dialogflow/index.js";
import { gms } from "./gms/index.js";
import { liveChat } from "./livechat/index.js";
import { rapidPro } from "./rapidpro/index.js";
import { rocketChat } from "./rocketchat/index.js";
import { salesforce } from "./salesforce/index.js";

/**
 * Every external system Liaison can talk to. The configuration merges their variables, and the composition root
 * creates the enabled ones, in this order: the first enabled desk takes hand-offs unless `DESK` names another.
 */
export const adapterModules: readonly AdapterModule[] = [rocketChat, salesforce, liveChat, rapidPro, gms, dialogflow];
