import { createRequire as __exoDeployRequire } from 'node:module'; const require = __exoDeployRequire(import.meta.url);
function timestampId(at){let iso=at.toISOString();return`${iso.slice(0,10).replace(/-/g,"")}-${iso.slice(11,19).replace(/:/g,"")}-${iso.slice(20,23)}`}var TIMESTAMP_ID=/^\d{8}-\d{6}-\d{3}$/;export{timestampId,TIMESTAMP_ID};
