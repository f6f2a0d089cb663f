import { createRequire as __exoDeployRequire } from 'node:module'; const require = __exoDeployRequire(import.meta.url);
var escapeLabel=v=>v.replace(/\\/g,"\\\\").replace(/"/g,'\\"').replace(/\n/g,"\\n"),labelsOf=labels=>Object.entries(labels).map(([k,v])=>`${k}="${escapeLabel(v)}"`).join(",");function textfile(metrics){return metrics.filter(m=>m.samples.length>0).map(m=>[`# HELP ${m.name} ${m.help}`,`# TYPE ${m.name} ${m.type}`,...m.samples.map(([labels,v])=>`${m.name}{${labelsOf(labels)}} ${v}`)].join(`
`)).join(`
`).concat(`
`)}export{textfile};
