"""The notebook tooling: authoring (notebooks, course, shipped), unwritten exercises, parameters, selfcheck, plotting,
widgets (hand-made cases as oracles)."""
import json
from pathlib import Path

import matplotlib
import nbformat
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from course_utils import plotting, selfcheck, widgets
from course_utils.authoring import course, shipped
from course_utils.authoring import notebooks as notebook_tools
from course_utils.core.params import env_default
from course_utils.unwritten import ExerciseNotWritten, answer_or_reference
from course_utils.models import ShallowCNN1D, VGG7

matplotlib.use("Agg")


# -- notebook_tools ------------------------------------------------------------------------------------------
def test_solution_regions_become_a_stub_naming_the_function_and_section():
    source = "def f(x):\n    y = 1\n    ### BEGIN SOLUTION\n    return x + y\n    ### END SOLUTION\n\n" \
             "### BEGIN SOLUTION\nz = 2\n### END SOLUTION\nprint(z)"
    stub = notebook_tools.STUB_IMPORT
    expected = (f"def f(x):\n    y = 1\n    {stub}\n    raise ExerciseNotWritten('f', 'Exercise 1')\n\n"
                f"{stub}\nraise ExerciseNotWritten(None, 'Exercise 1')\nprint(z)")
    assert notebook_tools.strip_solution_regions(source, "Exercise 1") == expected


def test_the_stub_of_a_nested_or_later_function_names_that_function():
    source = ("def outer():\n    def inner(a):\n        ### BEGIN SOLUTION\n        return a\n        ### END SOLUTION\n"
              "    return inner\n\n\ndef g(b):\n    # comment\n    ### BEGIN SOLUTION\n    return b\n    ### END SOLUTION")
    stripped = notebook_tools.strip_solution_regions(source)
    assert "raise ExerciseNotWritten('inner', '')" in stripped and "raise ExerciseNotWritten('g', '')" in stripped
    namespace = {}
    exec(stripped, namespace)
    with pytest.raises(ExerciseNotWritten, match=r"exercise g\(\) is not written yet") as error:
        namespace["g"](1)
    assert isinstance(error.value, NotImplementedError) and error.value.name == "g"


@pytest.mark.parametrize("source", ["### BEGIN SOLUTION\nx = 1", "x = 1\n### END SOLUTION",
                                    "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION"])
def test_unbalanced_solution_markers_are_rejected(source):
    with pytest.raises(ValueError, match="SOLUTION"):
        notebook_tools.strip_solution_regions(source)


def _notebook():
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("fast = False")
    params.metadata["tags"] = ["parameters"]
    exercise = nbformat.v4.new_code_cell("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION")
    exercise.metadata["tags"] = ["exercise"]
    exercise.outputs = [nbformat.v4.new_output("stream", name="stdout", text="noise\n")]
    exercise.execution_count = 3
    checked = nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(2)")
    checked.outputs = [nbformat.v4.new_output("stream", name="stdout", text="2\n"),
                       nbformat.v4.new_output("display_data", data={"image/png": "AAAA"})]
    hidden = nbformat.v4.new_markdown_cell("instructor note")
    hidden.metadata["tags"] = ["solution_only"]
    nb.cells = [nbformat.v4.new_markdown_cell("# title"), params, exercise, checked, hidden]
    return nb


def test_student_version_strips_solutions_outputs_and_hidden_cells():
    nb = _notebook()
    student = notebook_tools.student_version(nb)
    assert [c.cell_type for c in student.cells] == ["markdown", "code", "code", "code"]
    assert "return 1" not in student.cells[2].source
    assert "raise ExerciseNotWritten('f', 'title')" in student.cells[2].source, "named after the section heading"
    assert all(c.outputs == [] and c.execution_count is None for c in student.cells if c.cell_type == "code")
    assert nb.cells[2].outputs, "student_version must not modify its argument"
    assert student.cells[2].metadata["tags"] == ["exercise"]
    assert all("expected_output" not in c.metadata for c in student.cells)


def test_strip_keeps_only_the_text_of_checked_cells_in_metadata(tmp_path):
    path = tmp_path / "01_x.ipynb"
    nbformat.write(_notebook(), path)
    assert notebook_tools.strip_outputs(path) is True
    nb = nbformat.read(path, as_version=4)
    assert all(c.outputs == [] and c.execution_count is None for c in nb.cells if c.cell_type == "code")
    assert "expected_output" not in nb.cells[2].metadata
    expected = notebook_tools.expected_outputs(nb.cells[3])
    assert [(o.output_type, o.name, o.text) for o in expected] == [("stream", "stdout", "2\n")]
    assert notebook_tools.strip_outputs(path) is False, "a second strip keeps the stored expected output"
    nb.cells[3].outputs = [nbformat.v4.new_output("stream", name="stdout", text="3\n")]
    nbformat.write(nb, path)
    assert notebook_tools.strip_outputs(path) is True
    rerun = nbformat.read(path, as_version=4).cells[3]
    assert [o.text for o in notebook_tools.expected_outputs(rerun)] == ["3\n"], "a new run refreshes it"


def test_generate_is_deterministic_and_check_detects_staleness(tmp_path):
    (tmp_path / "solutions").mkdir()
    path = tmp_path / "solutions" / "01_x.ipynb"
    nbformat.write(_notebook(), path)
    notebook_tools.strip_outputs(path)
    (target,) = notebook_tools.generate(tmp_path)
    first = target.read_text()
    assert json.loads(first)["nbformat"] == 4
    assert notebook_tools.check_stale(tmp_path) == []
    notebook_tools.generate(tmp_path)
    assert target.read_text() == first
    target.write_text(first.replace("title", "edited"))
    assert any("stale" in p for p in notebook_tools.check_stale(tmp_path))
    (tmp_path / "notebooks" / "09_orphan.ipynb").write_text(first)
    assert any("09_orphan" in p for p in notebook_tools.check_stale(tmp_path))
    assert notebook_tools.main(["check", "--root", str(tmp_path)]) == 1


def test_generate_and_check_fail_loudly_without_solutions(tmp_path, capsys):
    for command in ("check", "generate", "strip"):
        assert notebook_tools.main([command, "--root", str(tmp_path)]) == 2
        assert "no solutions/NN_*.ipynb" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="source checkout"):
        notebook_tools.check_stale(None)


def test_check_flags_unstripped_solutions(tmp_path):
    (tmp_path / "solutions").mkdir()
    nbformat.write(_notebook(), tmp_path / "solutions" / "01_x.ipynb")
    notebook_tools.generate(tmp_path)
    assert any("carries outputs" in p for p in notebook_tools.check_stale(tmp_path))


@pytest.mark.parametrize("raw, default, expected", [("1", False, True), ("no", True, False), ("7", 0, 7),
                                                    ("0.5", 1.0, 0.5), ("cpu", "auto", "cpu")])
def test_env_default_converts_to_the_default_type(monkeypatch, raw, default, expected):
    monkeypatch.setenv("COURSE_TEST_VALUE", raw)
    assert env_default("COURSE_TEST_VALUE", default) == expected


def test_env_default_without_variable_and_with_bad_values(monkeypatch):
    monkeypatch.delenv("COURSE_TEST_VALUE", raising=False)
    assert env_default("COURSE_TEST_VALUE", 3) == 3
    monkeypatch.setenv("COURSE_TEST_VALUE", "maybe")
    with pytest.raises(ValueError, match="boolean"):
        env_default("COURSE_TEST_VALUE", False)
    with pytest.raises(ValueError, match="int"):
        env_default("COURSE_TEST_VALUE", 0)


# -- unwritten exercises -------------------------------------------------------------------------------------
def _not_written(x):
    raise ExerciseNotWritten("double", "Exercise 2 — doubling")


def test_answer_or_reference_uses_the_reference_until_the_exercise_is_written(capsys):
    assert answer_or_reference(_not_written, _double)(3) == 6
    assert answer_or_reference(_not_written, _double)(4) == 8
    printed = capsys.readouterr().out
    assert printed.count("exercise double() (section “Exercise 2 — doubling”) is not written yet") == 1, printed
    assert "reference answer instead" in printed
    assert answer_or_reference(lambda x: x + 1, _double)(3) == 4 and capsys.readouterr().out == ""


def test_answer_or_reference_lets_other_errors_through_and_defaults_to_the_course_reference():
    with pytest.raises(NotImplementedError, match="torch op"):
        answer_or_reference(lambda x: (_ for _ in ()).throw(NotImplementedError("torch op")), _double)(1)

    def keep_top_k(x, saliency, keep):
        raise ExerciseNotWritten("keep_top_k", "1")

    x, saliency = torch.arange(1.0, 5.0).view(1, 1, 4), torch.tensor([[0.1, 0.9, 0.5, 0.2]])
    kept = answer_or_reference(keep_top_k)(x, saliency, 0.5)
    assert torch.equal(kept, torch.tensor([[[0.0, 2.0, 3.0, 0.0]]]))


def test_the_self_check_still_fails_an_unwritten_exercise(capsys):
    def drop_increase(y, o):
        raise ExerciseNotWritten("drop_increase", "Exercise 2")

    assert selfcheck.check_exercise("drop_increase", drop_increase) is False
    assert "FAIL drop_increase" in capsys.readouterr().out


# -- shipped notebooks and course-notebooks ------------------------------------------------------------------
def test_copy_gives_the_student_or_solution_notebooks_and_never_overwrites(tmp_path, capsys):
    assert shipped.main(["copy", str(tmp_path / "class")]) == 0
    copied = sorted(p.name for p in (tmp_path / "class").iterdir())
    in_repo = sorted(p.name for p in (Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
    assert copied == [p.name for p in shipped.shipped_notebooks()] == in_repo
    assert "BEGIN SOLUTION" not in (tmp_path / "class" / "08_project_evaluation.ipynb").read_text()
    assert shipped.main(["copy", str(tmp_path / "class")]) == 0, "copying the same files again is harmless"
    mine = tmp_path / "class" / "05_rise.ipynb"
    mine.write_text("my work")
    capsys.readouterr()
    assert shipped.main(["copy", str(tmp_path / "class"), "--solutions"]) == 2
    assert "05_rise.ipynb" in capsys.readouterr().err and mine.read_text() == "my work"
    assert shipped.main(["copy", str(tmp_path / "keys"), "--solutions"]) == 0
    assert "BEGIN SOLUTION" in (tmp_path / "keys" / "08_project_evaluation.ipynb").read_text()


def test_running_a_folder_without_notebooks_fails_loudly(tmp_path, capsys):
    for argv in (["run", str(tmp_path)], ["check", str(tmp_path)]):
        assert shipped.main(argv) == 2
        assert "no course notebooks (NN_*.ipynb)" in capsys.readouterr().err
    assert course.main(["--fast", "--notebooks", str(tmp_path)]) == 2
    assert "nothing to run" in capsys.readouterr().err


def test_shipped_notebooks_say_where_they_looked(monkeypatch, tmp_path):
    monkeypatch.setattr(shipped, "SOURCE_ROOT", None)
    monkeypatch.setattr(shipped, "PACKAGED", tmp_path / "course_notebooks")
    with pytest.raises(FileNotFoundError, match="course_notebooks/solutions"):
        shipped.shipped_notebooks(solutions=True)


def test_a_run_never_writes_over_a_file_papermill_did_not_write(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "01_x.ipynb").write_text("the user's file")
    with pytest.raises(FileExistsError, match="left as it is"):
        course.run_notebook(tmp_path / "01_x.ipynb", tmp_path / "out" / "01_x.ipynb", fast=True)
    assert (tmp_path / "out" / "01_x.ipynb").read_text() == "the user's file"


# -- selfcheck -----------------------------------------------------------------------------------------------
def _double(x):
    return 2 * x


def _unfinished(x):
    raise NotImplementedError("Exercise")


@pytest.mark.parametrize("student, verdict, hint", [
    (_double, True, "PASS"),
    (lambda x: 3 * x, False, "values differ"),
    (lambda x: 2 * x[:1], False, "shape (1,), expected (2,)"),
    (lambda x: (2 * x).long(), False, "dtype"),
    (_unfinished, False, "not done yet"),
    (lambda x: x.undefined, False, "AttributeError"),
    (lambda x: 2.0, False, "expected a tensor"),
])
def test_check_verdicts_and_hints(capsys, student, verdict, hint):
    assert selfcheck.check("double", student, _double, [torch.tensor([1.5, 2.5])]) is verdict
    out = capsys.readouterr().out
    assert out.startswith("PASS" if verdict else "FAIL") and hint in out


def test_check_gives_each_function_its_own_copy_and_compares_tuples(capsys):
    def in_place(x):
        x.mul_(0)
        return x

    assert selfcheck.check("copies", lambda x: x * 0, in_place, [torch.ones(3)]) is True
    assert selfcheck.check("pair", lambda a, b: (a + b, 1.0), lambda a, b: (a + b, 1.5), [(1, 2)]) is False
    assert "result[1]: got 1, expected 1.5" in capsys.readouterr().out
    with pytest.raises(ValueError, match="at least one case"):
        selfcheck.check("empty", _double, _double, [])


# -- plotting ------------------------------------------------------------------------------------------------
def test_confusion_counts_and_per_class_accuracy_by_hand():
    counts = plotting.confusion_counts(torch.tensor([0, 0, 1, 2, 2]), torch.tensor([0, 1, 1, 2, 0]), 4)
    expected = np.zeros((4, 4), int)
    expected[0, 0] = expected[0, 1] = expected[1, 1] = expected[2, 2] = expected[2, 0] = 1
    np.testing.assert_array_equal(counts, expected)
    acc = plotting.per_class_accuracy([0, 0, 1, 2, 2], [0, 1, 1, 2, 0], 4)
    np.testing.assert_allclose(acc[:3], [0.5, 1.0, 0.5])
    assert np.isnan(acc[3])


def test_signed_and_unsigned_maps_use_the_two_colormaps():
    cmap, norm = plotting.map_style(torch.tensor([-1.0, 0.5]))
    assert cmap == plotting.SIGNED_CMAP and (norm.vmin, norm.vmax) == (-1.0, 1.0)
    cmap, norm = plotting.map_style(torch.tensor([0.0, 2.0]))
    assert cmap == plotting.UNSIGNED_CMAP and (norm.vmin, norm.vmax) == (0.0, 2.0)
    fig = plotting.plot_signal(torch.randn(1, 40, generator=torch.Generator().manual_seed(0)),
                               torch.linspace(-1, 1, 20))
    assert fig.axes[0].images[0].get_cmap().name == plotting.SIGNED_CMAP


def test_figures_have_one_panel_per_sample_and_method():
    gen = torch.Generator().manual_seed(0)
    signals, images = torch.randn(3, 1, 40, generator=gen), torch.rand(2, 3, 8, 8, generator=gen)
    fig = plotting.plot_method_grid(signals, {"a": torch.rand(3, 40), "b": torch.rand(3, 20)},
                                    row_titles=["r0", "r1", "r2"], style="strip")
    assert isinstance(fig, Figure) and len([ax for ax in fig.axes if ax.lines]) == 6
    fig = plotting.plot_method_grid(images, {"a": torch.rand(2, 8, 8), "b": torch.randn(2, 4, 4)})
    assert sum(1 for ax in fig.axes if ax.images) == 6
    with pytest.raises(ValueError, match="samples"):
        plotting.plot_method_grid(images, {"a": torch.rand(3, 8, 8)})
    assert isinstance(plotting.plot_confusion_matrix([0, 1, 1], [0, 1, 0], ["x", "y"]), Figure)
    assert isinstance(plotting.plot_per_class_accuracy([0, 1, 1], [0, 1, 0], ["x", "y"]), Figure)
    assert isinstance(plotting.plot_signal_grid(signals, maps=torch.rand(3, 40), titles="abc"), Figure)
    matplotlib.pyplot.close("all")


# -- widgets and course --------------------------------------------------------------------------------------
def test_explorer_is_static_without_a_front_end_and_builds_widgets_on_request():
    torch.manual_seed(0)
    model = ShallowCNN1D().eval()
    x = torch.randn(3, 1, 40, generator=torch.Generator().manual_seed(1))
    assert widgets.has_frontend() is False
    fig = widgets.explore(model, x, methods=["saliency", "gradcam"])
    assert isinstance(fig, Figure) and sum(1 for ax in fig.axes if ax.lines) == 2
    box = widgets.explore(model, x, methods=["saliency", "gradcam"], interactive=True)
    sample, method = box.children[0].children
    target, layer = box.children[1].children
    assert layer.options == ("features.0", "features.2", "features.4") and layer.disabled
    method.value = "gradcam"
    assert not layer.disabled
    with pytest.raises(ValueError, match="layer"):
        widgets.explore(VGG7().eval(), torch.rand(1, 3, 8, 8), methods=["gradcam"], layer="classifier")
    matplotlib.pyplot.close("all")


def _all_widgets(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _all_widgets(child)


def test_explorer_redraws_an_image_widget_on_every_control_and_captures_no_output():
    """The interactive explorer sets an Image's PNG value from its callbacks: no Output widget (whose capture
    under papermill can hang a run, see course_utils.widgets), and each control changes the picture."""
    import ipywidgets

    torch.manual_seed(0)
    model = VGG7().eval()
    x = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    box = widgets.explore(model, x, methods=["saliency", "gradcam"], class_names=list("abcdefgh"),
                          interactive=True)
    assert not any(isinstance(w, ipywidgets.Output) for w in _all_widgets(box))
    (sample, method), (target, layer) = box.children[0].children, box.children[1].children
    status, image = box.children[2], box.children[3]
    assert isinstance(image, ipywidgets.Image) and bytes(image.value).startswith(b"\x89PNG") and status.value == ""
    seen = [bytes(image.value)]
    for control, value in ((method, "gradcam"), (layer, "features.2"), (target, 5), (sample, 2)):
        control.value = value
        assert bytes(image.value) not in seen, f"changing {control.description} did not redraw"
        seen.append(bytes(image.value))
    assert not layer.disabled
    method.value = "saliency"
    assert layer.disabled and not method.disabled and status.value == ""
    matplotlib.pyplot.close("all")


def test_explorer_titles_name_the_layer_of_layer_methods():
    torch.manual_seed(0)
    state = widgets.Explorer(ShallowCNN1D().eval(), torch.randn(2, 1, 40), None, ["saliency", "gradcam"],
                             [str(k) for k in range(10)])
    assert state.method_label("saliency", "features.2") == "saliency"
    assert state.method_label("gradcam", "features.2") == "gradcam @ features.2"
    assert state.method_label("gradcam", None) == "gradcam @ features.5"   # the default: the last conv's ReLU
    fig = state.figure(0, "gradcam", 3, "features.2")
    assert fig.axes[0].get_title().startswith("gradcam @ features.2 for class 3\n")
    static = state.static_figure(0, None)
    assert [ax.get_title() for ax in static.axes if ax.get_title()] == ["saliency", "gradcam @ features.5"]
    matplotlib.pyplot.close("all")


def test_explorer_explains_the_predicted_class_as_the_tables_do():
    """Given the true labels, the explorer still explains the predicted class (its default target); the label
    only appears in the title."""
    torch.manual_seed(0)
    model = ShallowCNN1D().eval()
    x = torch.randn(2, 1, 40, generator=torch.Generator().manual_seed(3))
    predicted = model(x).argmax(1)
    labels = (predicted + 1) % 10
    state = widgets.Explorer(model, x, labels, ["saliency"], [str(k) for k in range(10)])
    title = state.figure(0, "saliency", None, None).axes[0].get_title()
    assert title == f"saliency for class {int(predicted[0])}\nsample 0: true {int(labels[0])}, predicted {int(predicted[0])}"
    box = widgets.explore(model, x, labels, methods=["saliency"], interactive=True)
    assert box.children[1].children[0].value == -1   # the target control starts on "predicted"
    matplotlib.pyplot.close("all")


def test_course_selects_notebooks_by_number(tmp_path):
    names = [tmp_path / f"{n}.ipynb" for n in ("00_a", "00_primer", "03_b", "04_c")]
    assert course.select(names, None) == names
    assert course.select(names, ["3", "04"]) == names[2:]
    assert course.select(names, ["00,04"]) == [names[0], names[1], names[3]]
    assert course.select(names, ["00_primer"]) == [names[1]]
    with pytest.raises(ValueError, match="07"):
        course.select(names, ["07"])
    with pytest.raises(ValueError, match="00_x"):
        course.select(names, ["00_x"])


def test_course_budget_reads_cell_times_and_progress_bars(tmp_path):
    def cell(source, seconds, *outputs):
        code = nbformat.v4.new_code_cell(source)
        code.metadata["papermill"] = {"duration": seconds}
        code.outputs = list(outputs)
        return code

    closed_bar = nbformat.v4.new_output("display_data", data={"text/plain": ""})
    figure = nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "fig"})
    terminal_bar = nbformat.v4.new_output("stream", name="stderr", text="RISE:  50%|#####     | 5/10 [00:30<00:30, 0.17it/s]")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# title"), cell("explain()", 30.0, closed_bar),
                cell("fit()\nplot()", 12.0, figure), cell("loop()", 61.0, terminal_bar), cell("x = 1", 2.0)]
    path = tmp_path / "05_x.ipynb"
    nbformat.write(nb, path)
    cells = course.cell_times(path)
    assert [(c.index, c.seconds, c.first_line, c.bar) for c in cells] == [
        (1, 30.0, "explain()", True), (2, 12.0, "fit()", False), (3, 61.0, "loop()", True), (4, 2.0, "x = 1", False)]
    assert course.over_budget("05_x", 105.0, cells) == ["05_x cell 2: 12 s without a progress bar (fit())",
                                                        "05_x cell 3: 61 s, over 60 s (loop())"]
    assert course.over_budget("05_x", 301.0, cells[3:]) == ["05_x: 301 s in all, over 300 s"]
