#!/usr/bin/env node
// In the real editor: does a typed socket of the pack refuse a wrong link? Loads a template, drags a link
// from an IMAGE output onto NST Optimize's NST_VGG input with the mouse (a screenshot mid-drag and one
// after the drop), and also asks LiteGraph directly (node.connect). Prints a JSON report; exit 0 when the
// link was refused both ways.
//
//   PLAYWRIGHT_CORE_DIR=<dir with node_modules/playwright-core> \
//     node tests/tools/socket_check.cjs http://127.0.0.1:8188/ workflows/nst_blended_styles.json OUT_PREFIX
const fs = require('fs');
const path = require('path');

const pw = require(path.join(process.env.PLAYWRIGHT_CORE_DIR || path.join(process.env.HOME, 'comfyhost/pw'),
                             'node_modules', 'playwright-core'));

(async () => {
  const [url, wfPath, prefix] = process.argv.slice(2);
  const browser = await pw.chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost'],
  });
  const report = {};
  try {
    const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
    await page.route(u => !/^(http:\/\/(127\.0\.0\.1|localhost)[:/]|blob:|data:)/.test(String(u)), r => r.abort());
    await page.goto(url, { waitUntil: 'domcontentloaded' });
    await page.waitForFunction(() => window.app && window.app.graph && document.querySelector('canvas'));
    await page.waitForTimeout(1500);
    const wf = JSON.parse(fs.readFileSync(wfPath, 'utf8'));
    // where, on the page, the source's IMAGE output and Optimize's vgg input are drawn
    const where = await page.evaluate(async (wf) => {
      const app = window.app;
      await app.loadGraphData(wf, true, true, 'socket check');
      const nodes = app.graph._nodes;
      const source = nodes.find(n => n.type === 'NST_ExampleImage');
      const target = nodes.find(n => n.type === 'NST_Optimize');
      const slot = target.inputs.findIndex(i => i.name === 'vgg');
      const rect = app.canvas.canvas.getBoundingClientRect();
      const toPage = p => { const c = app.canvas.ds.convertOffsetToCanvas(p); return [rect.left + c[0], rect.top + c[1]]; };
      return { source: source.id, target: target.id, slot, linkBefore: target.inputs[slot].link,
               targetType: target.inputs[slot].type, sourceType: source.outputs[0].type,
               from: toPage(source.getConnectionPos(false, 0)), to: toPage(target.getConnectionPos(true, slot)) };
    }, wf);
    Object.assign(report, where);
    await page.waitForTimeout(800);
    await page.mouse.move(...where.from);
    await page.mouse.down();
    await page.mouse.move(where.to[0] - 40, where.to[1], { steps: 15 });
    await page.mouse.move(...where.to, { steps: 5 });
    await page.waitForTimeout(400);
    await page.screenshot({ path: `${prefix}_dragging.png` });
    await page.mouse.up();
    await page.waitForTimeout(600);
    await page.screenshot({ path: `${prefix}_dropped.png` });
    Object.assign(report, await page.evaluate(({ source, target, slot }) => {
      const g = window.app.graph;
      const s = g.getNodeById(source), t = g.getNodeById(target);
      const afterDrop = t.inputs[slot].link;
      const direct = s.connect(0, t, slot);            // LiteGraph's own type check
      return { linkAfterDrop: afterDrop, directConnect: direct ? 'connected' : 'refused',
               linkAfterDirect: t.inputs[slot].link };
    }, where));
    report.refused = report.linkAfterDrop === report.linkBefore && report.directConnect === 'refused'
                     && report.linkAfterDirect === report.linkBefore;
  } catch (e) {
    report.failure = String(e && e.stack || e).slice(0, 2000);
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(report, null, 2));
  process.exit(report.refused ? 0 : 1);
})();
