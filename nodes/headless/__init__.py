"""The headless runner: runs saved ComfyUI workflows (editor or API JSON) without ComfyUI.

It knows nothing of style transfer (no `nst_core` import anywhere in this package): the node
classes to run are handed to it, as V1 classes or as nodes described by its own NodeSpec.
Split as ComfyUI's comfy_execution/ is:

- `node_spec`: the node interface (V3-shaped nodes)      - `format`: editor (UI) <-> API workflow formats
- `graph`: links, types, input specs, order              - `validation`: checks before anything runs
- `cache`: output caching across runs                    - `executor`: runs what the outputs need
- `runtime`: the per-run context nodes read              - `core_nodes`: headless LoadImage/SaveImage/...
- `files`: safe paths, atomic numbered files             - `progress`: the one progress bar (tqdm)
- `cli`: `nst-run`                                       - `overrides`: --set/--sweep NODE.INPUT values
- `sweep`: the runs of --sweep / --inputs                - `fanout`: the many-runs driver
- `fanout_worker`: one run in a worker                   - `run_folders`: run_NNNN/ folders, manifest.json
- `local_pool` / `ray_backend`: where runs go

Importing this package imports nothing heavy (no torch): ComfyUI's adapter imports `runtime`.
"""
