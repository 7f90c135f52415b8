// What an NST node's run says (its report, warnings included) shown on the node itself, as ComfyUI's own
// Preview Any shows its text: the node returns it as ui.text, and this fills a read-only text box.
// The box is made on the first run and never saved (serialize = false), so workflows and widget order
// stay as they are; the node keeps its size (growing it would cover the nodes below), the box scrolls.
import { app } from "../../scripts/app.js";
import { ComfyWidgets } from "../../scripts/widgets.js";

const SHOWN = "report_shown";

app.registerExtension({
  name: "NST.ReportOnNode",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!nodeData.name.startsWith("NST_")) return;
    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
      onExecuted?.apply(this, [message]);
      const text = message?.text;
      if (!Array.isArray(text) || text.length === 0) return;
      let box = this.widgets?.find((w) => w.name === SHOWN);
      if (!box) {
        box = ComfyWidgets.STRING(this, SHOWN, ["STRING", { multiline: true }], app).widget;
        box.element.readOnly = true;
        box.serialize = false;
      }
      box.value = text.join("\n\n");
      this.setDirtyCanvas?.(true, true);
    };
  },
});
