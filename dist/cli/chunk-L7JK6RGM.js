import { createRequire as __exoDeployRequire } from 'node:module'; const require = __exoDeployRequire(import.meta.url);
var STRATEGIES=["lockstep","rolling","canary"];export{STRATEGIES};
