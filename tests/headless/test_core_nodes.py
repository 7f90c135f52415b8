"""Headless core stand-ins: LoadImage, SaveImage, PreviewImage, image utilities; folder safety."""
import json
import os
import pathlib
import tempfile
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from comfyui_nst.nodes.headless.core_nodes import CORE_NODE_CLASS_MAPPINGS
from comfyui_nst.nodes.headless.executor import Executor
from comfyui_nst.nodes.headless.files import save_image_path
from comfyui_nst.nodes.headless.validation import ValidationError
from conftest import load_toy_nodes

FIXTURES = pathlib.Path(__file__).parents[1] / "fixtures"


_toys = load_toy_nodes


toys = _toys()
CLASSES, NAMES = toys.registry()


@pytest.fixture
def dirs(tmp_path):
    d = {k: tmp_path / k for k in ("input", "output", "temp")}
    d["input"].mkdir()
    rgba = np.zeros((6, 8, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[..., 3] = 128
    Image.fromarray(rgba, "RGBA").save(d["input"] / "red.png")
    Image.fromarray(np.full((5, 7, 3), 200, np.uint8)).save(d["input"] / "grey.png")
    return d


def _executor(d):
    return Executor(CLASSES, input_dir=str(d["input"]), output_dir=str(d["output"]), temp_dir=str(d["temp"]),
                    display_names=NAMES)


def _all_files(root):
    return sorted(str(p.relative_to(root)) for p in pathlib.Path(root).rglob("*") if p.is_file())


def _load_save(image="red.png", prefix="ComfyUI"):
    return {"1": {"class_type": "LoadImage", "inputs": {"image": image}},
            "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": prefix}}}


def test_load_then_save_numbers_files_and_embeds_the_workflow(dirs):
    ex = _executor(dirs)
    ui = {"nodes": [], "links": [], "version": 0.4, "marker": 1}
    r1 = ex.run(_load_save(prefix="runs/nst"), extra_pnginfo={"workflow": ui})
    ex.clear_cache()
    r2 = ex.run(_load_save(prefix="runs/nst"))
    out = dirs["output"]
    assert r1.files == [str(out / "runs" / "nst_00001_.png")] and r2.files == [str(out / "runs" / "nst_00002_.png")]
    assert r1.outputs["2"] == {"images": [{"filename": "nst_00001_.png", "subfolder": "runs", "type": "output"}]}
    img = Image.open(r1.files[0])
    assert img.size == (8, 6) and img.getpixel((0, 0)) == (255, 0, 0)
    assert json.loads(img.info["prompt"])["2"]["inputs"]["filename_prefix"] == "runs/nst"
    assert json.loads(img.info["workflow"]) == ui
    assert "workflow" not in Image.open(r2.files[0]).info


def test_load_image_tensors_and_mask(dirs):
    ex = _executor(dirs)
    with ex_context(ex):
        image, mask = CORE_NODE_CLASS_MAPPINGS["LoadImage"]().load_image("red.png")
        assert image.shape == (1, 6, 8, 3) and image.dtype == torch.float32
        assert torch.allclose(mask, torch.full((1, 6, 8), 1 - 128 / 255))
        image, mask = CORE_NODE_CLASS_MAPPINGS["LoadImage"]().load_image("grey.png")
        assert image.shape == (1, 5, 7, 3) and mask.shape == (1, 64, 64) and float(mask.max()) == 0.0
        assert CORE_NODE_CLASS_MAPPINGS["LoadImage"].INPUT_TYPES()["required"]["image"][0] == ["grey.png", "red.png"]


def ex_context(ex):
    from comfyui_nst.nodes.headless.runtime import activate

    return activate(ex.context())


def test_missing_image_is_a_validation_error(dirs):
    with pytest.raises(ValidationError) as info:
        _executor(dirs).run(_load_save(image="nope.png"))
    (problem,) = info.value.problems
    assert (problem.node_id, problem.input_name) == ("1", "image")
    assert "Invalid image file: nope.png" in problem.message
    assert not dirs["output"].exists()


@pytest.mark.parametrize("image", ["../secret.png", "sub/../../secret.png", "/etc/passwd"])
def test_image_name_outside_input_folder_refused(dirs, image):
    (dirs["input"].parent / "secret.png").write_bytes((dirs["input"] / "red.png").read_bytes())
    with pytest.raises(ValidationError, match="input folder"):
        _executor(dirs).run(_load_save(image=image))


@pytest.mark.parametrize("prefix", ["../escape", "a/../../escape", "/tmp/escape", "%year%/../../x"])
def test_prefix_outside_output_folder_refused_and_nothing_written(dirs, prefix):
    before = _all_files(dirs["input"].parent)
    with pytest.raises(ValidationError, match="output folder") as info:
        _executor(dirs).run(_load_save(prefix=prefix))
    assert info.value.problems[0].input_name == "filename_prefix"
    assert _all_files(dirs["input"].parent) == before


def test_save_image_path_guard_also_at_run_time(tmp_path):
    with pytest.raises(ValueError, match="outside the output folder"):
        save_image_path("../x", str(tmp_path))
    with pytest.raises(ValueError, match="absolute"):
        save_image_path(str(tmp_path / "x"), str(tmp_path))
    (tmp_path / "a_00007_.png").write_bytes(b"")
    (tmp_path / "a_b_00009_.png").write_bytes(b"")
    assert save_image_path("a", str(tmp_path))[1:] == ("a", 8, "")


def test_preview_writes_to_temp_not_output(dirs):
    g = {"1": {"class_type": "LoadImage", "inputs": {"image": "grey.png"}},
         "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}
    result = _executor(dirs).run(g)
    assert result.files == [] and len(result.previews) == 1
    assert result.previews[0].startswith(str(dirs["temp"])) and os.path.isfile(result.previews[0])
    assert result.outputs["2"]["images"][0]["type"] == "temp"
    assert not dirs["output"].exists()


def test_image_utilities(dirs):
    g = {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 4, "batch_size": 2, "color": 0xFF0000}},
         "2": {"class_type": "ImageScale", "inputs": {"image": ["1", 0], "upscale_method": "bilinear",
                                                      "width": 6, "height": 0, "crop": "disabled"}},
         "3": {"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}},
         "4": {"class_type": "ImageScaleBy", "inputs": {"image": ["3", 0], "upscale_method": "lanczos", "scale_by": 2.0}},
         "5": {"class_type": "ImageBatch", "inputs": {"image1": ["4", 0], "image2": ["1", 0]}},
         "6": {"class_type": "ToyImageSink", "inputs": {"images": ["5", 0]}}}
    result = _executor(dirs).run(g)
    assert result.outputs["6"]["shape"] == [[4, 6, 12, 3]]
    # red inverted is cyan: mean over 2 cyan + 2 red images = 0.5
    assert abs(result.outputs["6"]["mean"][0] - 0.5) < 1e-3


def test_the_acceptance_harness_workflow_runs(dirs):
    # shared/comfyhost/example: LoadImage -> HarnessInvertImage -> SaveImage, UI format from the real frontend
    Image.open(dirs["input"] / "grey.png").save(dirs["input"] / "harness_test.png")
    result = _executor(dirs).run(str(FIXTURES / "invert_ui.json"))
    (path,) = result.files
    assert os.path.basename(path) == "harness_invert_00001_.png"
    assert abs(np.asarray(Image.open(path)).astype(int) - 55).max() <= 1  # 255 - 200 (truncated like ComfyUI)
    assert json.loads(Image.open(path).info["workflow"])["last_node_id"] == 3


def test_16_bit_greyscale_png_keeps_its_levels(dirs):
    ramp = np.linspace(0, 65535, 6 * 8).reshape(6, 8).astype(np.uint16)
    Image.fromarray(ramp).save(dirs["input"] / "grey16.png")
    assert Image.open(dirs["input"] / "grey16.png").mode.startswith("I")
    with ex_context(_executor(dirs)):
        image, mask = CORE_NODE_CLASS_MAPPINGS["LoadImage"]().load_image("grey16.png")
    assert image.shape == (1, 6, 8, 3)
    expected = torch.from_numpy(ramp.astype(np.float32) / 65535.0)
    for c in range(3):
        assert torch.allclose(image[0, ..., c], expected, atol=1e-6)
    assert abs(float(image.mean()) - 0.5) < 1e-3   # it came out nearly white (mean ~0.98) before


def test_exif_orientation_is_applied(dirs):
    picture = np.zeros((4, 10, 3), np.uint8)
    picture[:, :5] = 255   # left half white
    exif = Image.Exif()
    exif[0x0112] = 6       # rotate 90 degrees clockwise to display
    Image.fromarray(picture).save(dirs["input"] / "rotated.png", exif=exif)
    with ex_context(_executor(dirs)):
        image, _ = CORE_NODE_CLASS_MAPPINGS["LoadImage"]().load_image("rotated.png")
    assert image.shape == (1, 10, 4, 3)   # shown upright: portrait
    assert float(image[0, :5].mean()) == 1.0 and float(image[0, 5:].mean()) == 0.0   # white on top


def _preview_graph():
    return {"1": {"class_type": "LoadImage", "inputs": {"image": "grey.png"}},
            "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}


def test_previews_without_a_temp_dir_belong_to_the_run(dirs, tmp_path, monkeypatch):
    system_temp = tmp_path / "system_temp"
    system_temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_temp))
    seen = []

    class Spy(CORE_NODE_CLASS_MAPPINGS["PreviewImage"]):
        def save_images(self, *args, **kwargs):
            result = super().save_images(*args, **kwargs)
            seen.append(_all_files(system_temp))   # during the run the preview exists
            return result

    ex = Executor({**CLASSES, "PreviewImage": Spy}, input_dir=str(dirs["input"]), output_dir=str(dirs["output"]))
    result = ex.run(_preview_graph())
    assert len(seen) == 1 and len(seen[0]) == 1 and seen[0][0].endswith(".png")
    assert len(result.previews) == 1 and not os.path.exists(result.previews[0])
    assert list(system_temp.iterdir()) == []     # the run's temp folder is gone
    assert not dirs["output"].exists()


def test_threads_saving_at_once_lose_nothing(dirs):
    """Rounds of 4 threads started together, all saving under one prefix: every image kept, none overwritten."""
    rounds, writers = 10, 4
    barrier = threading.Barrier(writers)
    errors = []

    def save(value):
        try:
            image = torch.full((1, 256, 256, 3), value / 255.0)   # big enough to widen the race window
            with ex_context(_executor(dirs)):
                barrier.wait(timeout=30)
                CORE_NODE_CLASS_MAPPINGS["SaveImage"]().save_images(image, "race/same")
        except Exception as exc:   # noqa: BLE001 - reported below
            errors.append(exc)

    values = []
    for r in range(rounds):
        batch = [10 * r + w + 1 for w in range(writers)]
        values += batch
        threads = [threading.Thread(target=save, args=(v,)) for v in batch]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    files = sorted((dirs["output"] / "race").iterdir())
    assert [f.name for f in files] == [f"same_{n:05}_.png" for n in range(1, rounds * writers + 1)]
    assert sorted(int(np.asarray(Image.open(f))[0, 0, 0]) for f in files) == sorted(values)
