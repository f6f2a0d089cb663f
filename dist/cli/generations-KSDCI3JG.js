import { createRequire as __exoDeployRequire } from 'node:module'; const require = __exoDeployRequire(import.meta.url);
import{readSystemState}from"./chunk-RYIU5UJK.js";import{shortPath,table}from"./chunk-IX56W76V.js";import{ExitCode}from"./chunk-AYQXVOZG.js";import"./chunk-6BQE7HC4.js";async function run(ctx){let states=await Promise.all(ctx.hosts.map(h=>readSystemState(ctx.executor(h))));return{exitCode:ExitCode.ok,data:{hosts:states},text:states.map(render).join(`

`)}}function render(state){let rows=[["GEN","DATE","STATE","EXO","SYSTEM"]];for(let g of state.generations){let marks=[g.current?"current":"",g.running?"running":""].filter(Boolean).join(",");rows.push([String(g.number),g.date,marks||"-",g.exo,shortPath(g.path)])}let runningElsewhere=state.running&&!state.generations.some(g=>g.running);return[`${state.host}:`,table(rows),...runningElsewhere?[`running ${shortPath(state.running)}: a system that is in no generation (a \`test\` activation)`]:[]].join(`
`)}export{run};
