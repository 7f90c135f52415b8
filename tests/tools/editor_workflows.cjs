#!/usr/bin/env node
// Build the workflow templates in the REAL ComfyUI editor, or check that it loads them unchanged.
//
//   node editor_workflows.cjs build URL SPECS.json WORKFLOWS_DIR API_DIR
//       for each spec (tests/tools/workflow_specs.py): clear the graph, LiteGraph.createNode each node,
//       set its widgets by name, connect the links, then save app.graph.serialize() as
//       WORKFLOWS_DIR/<name>.json and app.graphToPrompt().output as API_DIR/<name>_api.json.
//   node editor_workflows.cjs check URL WORKFLOW.json...
//       load each file with app.loadGraphData, serialize it again and compare (the editor must load
//       it unchanged), list node types the editor does not know; exit 1 on any difference.
//
// Needs a running ComfyUI with the pack loaded (shared/comfyhost/comfy_host.sh start) and
// playwright-core + /usr/bin/chromium (shared/comfyhost/shot_workflow.sh installs both); set
// PLAYWRIGHT_CORE_DIR to the folder holding node_modules/playwright-core.
const fs = require('fs');
const path = require('path');

function loadPlaywright() {
  const tries = ['playwright-core'];
  if (process.env.PLAYWRIGHT_CORE_DIR) tries.push(path.join(process.env.PLAYWRIGHT_CORE_DIR, 'node_modules', 'playwright-core'));
  for (const t of tries) { try { return require(t); } catch (e) { /* next */ } }
  console.error('playwright-core not found (set PLAYWRIGHT_CORE_DIR)');
  process.exit(2);
}

function uuidFor(name) {  // a stable graph id per template (the editor makes a random one)
  const h = require('crypto').createHash('sha1').update('comfyui-nst/' + name).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

async function openEditor(url) {
  if (!/^http:\/\/(127\.0\.0\.1|localhost):/.test(url)) throw new Error('refusing non-loopback URL ' + url);
  const { chromium } = loadPlaywright();
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
           '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost'],
  });
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  const errors = [];
  page.on('pageerror', e => { if (!/addSetting/.test(String(e && e.stack))) errors.push(String(e).slice(0, 300)); });
  await page.route(u => !/^(http:\/\/(127\.0\.0\.1|localhost)[:/]|blob:|data:)/.test(String(u)), r => r.abort());
  await page.goto(url, { waitUntil: 'domcontentloaded', timeout: 120000 });
  await page.waitForFunction(() => window.app && window.app.graph && document.querySelector('canvas'), null, { timeout: 120000 });
  await page.waitForTimeout(1500);
  return { browser, page, errors };
}

async function build(url, specsPath, wfDir, apiDir) {
  const specs = JSON.parse(fs.readFileSync(specsPath, 'utf8'));
  const { browser, page, errors } = await openEditor(url);
  let rc = 0;
  try {
    for (const spec of specs) {
      const res = await page.evaluate(async ({ spec, graphId }) => {
        const app = window.app, LG = window.LiteGraph;
        const problems = [];
        await app.loadGraphData({ nodes: [], links: [], groups: [], config: {}, extra: {}, version: 0.4 }, true, true, spec.name);
        const graph = app.graph;
        const made = {};
        for (const n of spec.nodes) {
          const node = LG.createNode(n.type);
          if (!node) { problems.push(`unknown node type ${n.type}`); continue; }
          graph.add(node);
          if (node.id !== n.id) problems.push(`node ${n.type} got id ${node.id}, spec says ${n.id}`);
          made[n.id] = node;
          if (n.title) node.title = n.title;
          for (const [name, value] of Object.entries(n.widgets)) {
            const w = (node.widgets || []).find(x => x.name === name);
            if (!w) { problems.push(`node ${n.id} (${n.type}) has no widget ${name}`); continue; }
            w.value = value;
            if (w.callback && name !== 'control_after_generate') { try { w.callback(value); } catch (e) { /* display only */ } }
          }
          node.pos = n.pos;
          const min = node.computeSize();
          const want = n.size || node.size;
          node.setSize([Math.max(want[0], min[0]), Math.max(want[1], min[1])]);
        }
        // no overlaps: in each column (same x) push nodes down below the one above (title bar + gap)
        const columns = {};
        for (const n of spec.nodes) (columns[n.pos[0]] = columns[n.pos[0]] || []).push(made[n.id]);
        for (const col of Object.values(columns)) {
          col.sort((a, b) => a.pos[1] - b.pos[1]);
          for (let i = 1; i < col.length; i++) {
            const above = col[i - 1];
            const minY = above.pos[1] + above.size[1] + LG.NODE_TITLE_HEIGHT + 20;
            if (col[i].pos[1] < minY) col[i].pos = [col[i].pos[0], minY];
          }
        }
        for (const [src, out, dst, inputName] of spec.links) {
          const a = made[src], b = made[dst];
          const slot = b.findInputSlot(inputName);
          if (slot < 0) { problems.push(`node ${dst} has no input ${inputName}`); continue; }
          const link = a.connect(out, b, slot);
          if (!link) problems.push(`could not connect ${src}:${out} -> ${dst}.${inputName}`);
        }
        graph.id = graphId;
        app.canvas.ds.offset = [0, 0];
        app.canvas.ds.scale = 0.75;
        graph.setDirtyCanvas(true, true);
        // save what the editor saves once the graph is loaded (execution order, widget lists settled)
        await app.loadGraphData(graph.serialize(), true, true, spec.name);
        app.canvas.ds.offset = [0, 0];
        app.canvas.ds.scale = 0.75;
        const workflow = app.graph.serialize();
        const prompt = (await app.graphToPrompt()).output;
        return { workflow, prompt, problems };
      }, { spec, graphId: uuidFor(spec.name) });
      if (res.problems.length) { rc = 1; console.error(spec.name, res.problems); }
      fs.writeFileSync(path.join(wfDir, spec.name + '.json'), JSON.stringify(res.workflow, null, 2) + '\n');
      fs.writeFileSync(path.join(apiDir, spec.name + '_api.json'), JSON.stringify(res.prompt, null, 2) + '\n');
      console.log(`built ${spec.name}: ${res.workflow.nodes.length} nodes, ${res.workflow.links.length} links`);
    }
  } finally {
    await browser.close();
  }
  if (errors.length) { console.error('page errors:', errors); rc = 1; }
  return rc;
}

function diff(a, b, where = '') {
  if (typeof a !== typeof b || Array.isArray(a) !== Array.isArray(b) || (a === null) !== (b === null)) return [where || '/'];
  if (a && typeof a === 'object') {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...keys].flatMap(k => diff(a[k], b[k], `${where}/${k}`));
  }
  return a === b ? [] : [`${where}: ${JSON.stringify(a)} != ${JSON.stringify(b)}`];
}

async function check(url, files) {
  const { browser, page, errors } = await openEditor(url);
  let rc = 0;
  try {
    for (const file of files) {
      const wf = JSON.parse(fs.readFileSync(file, 'utf8'));
      const res = await page.evaluate(async ({ wf, name }) => {
        const app = window.app;
        await app.loadGraphData(JSON.parse(JSON.stringify(wf)), true, true, name);
        const known = window.LiteGraph.registered_node_types;
        const types = app.graph._nodes.map(n => n.type);
        return { again: app.graph.serialize(), missing: [...new Set(types.filter(t => !known[t]))],
                 prompt: (await app.graphToPrompt()).output };
      }, { wf, name: path.basename(file) });
      // the canvas position / zoom (extra.ds) is view state, not part of the graph
      const a = JSON.parse(JSON.stringify(wf)), b = res.again;
      for (const x of [a, b]) if (x.extra) delete x.extra.ds;
      const d = diff(a, b);
      const ok = !d.length && !res.missing.length;
      if (!ok) rc = 1;
      console.log(JSON.stringify({ file: path.basename(file), unchanged: !d.length, differences: d.slice(0, 10),
                                   missingNodeTypes: res.missing, apiNodes: Object.keys(res.prompt).length }));
    }
  } finally {
    await browser.close();
  }
  if (errors.length) { console.error('page errors:', errors); rc = 1; }
  return rc;
}

(async () => {
  const [mode, url, ...rest] = process.argv.slice(2);
  let rc = 2;
  if (mode === 'build' && rest.length === 3) rc = await build(url, ...rest);
  else if (mode === 'check' && rest.length) rc = await check(url, rest);
  else console.error('usage: editor_workflows.cjs build URL SPECS.json WORKFLOWS_DIR API_DIR | check URL WORKFLOW.json...');
  process.exit(rc);
})().catch(e => { console.error(e); process.exit(1); });
