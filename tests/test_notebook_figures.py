"""Figures that the notebooks' text and answer keys quote, recomputed with the kit (or read from the measured tables
of the course site's pages in docs/): a change to the data, the models or the tables that makes a quoted number
wrong fails here. A computed figure is compared at the precision the text prints it with, ± one unit in the last
place (:func:`quoted_figures.assert_quoted`); counts are compared exactly."""
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
from torch import nn

from course_utils.data import hmt, mnist1d
from course_utils.data.mnist1d import digit_templates
from course_utils.models import VGG7, ShallowCNN1D, load_pretrained
from quoted_figures import assert_quoted

REPO = Path(__file__).resolve().parents[1]


def text_of(stem: str) -> str:
    """All Markdown of ``solutions/<stem>.ipynb`` (answer keys included), lines joined by spaces."""
    nb = nbformat.read(REPO / "solutions" / f"{stem}.ipynb", as_version=4)
    return " ".join(c.source.replace("\n", " ") for c in nb.cells if c.cell_type == "markdown")


def quoted(stem: str, pattern: str) -> tuple[str, ...]:
    match = re.search(pattern, text_of(stem))
    assert match, f"solutions/{stem}.ipynb no longer says /{pattern}/: update this test with the text"
    return match.groups()


@pytest.fixture(scope="module")
def mnist1d_sets():
    return mnist1d("train"), mnist1d("test")


@pytest.fixture(scope="module")
def mnist1d_predictions(mnist1d_sets):
    with torch.no_grad():
        return load_pretrained("mnist1d", device="cpu")(mnist1d_sets[1].x).argmax(1)


def receptive_field(model: nn.Module) -> int:
    field, jump = 1, 1
    for conv in (m for m in model.modules() if isinstance(m, nn.Conv1d)):
        field += (conv.kernel_size[0] - 1) * jump
        jump *= conv.stride[0]
    return field


def test_01_template_span_and_receptive_field(mnist1d_sets):
    low, high, mean, seen = quoted("01_mnist1d", r"covers (\d+) to (\d+) of the 40 points \(([\d.]+) on average over "
                                                 r"the 5000 signals.*?which sees (\d+) points")
    counts = torch.cat([dataset.positions.sum(1) for dataset in mnist1d_sets]).double()
    assert len(counts) == 5000
    assert (int(low), int(high)) == (counts.min().item(), counts.max().item())
    assert_quoted(mean, counts.mean().item(), "mean template span")
    assert int(seen) == receptive_field(ShallowCNN1D())


def test_01_answer_key_errors_and_template_likeness(mnist1d_sets, mnist1d_predictions):
    test = mnist1d_sets[1]
    errors, accuracy = quoted("01_mnist1d", r"makes (\d+) errors on the 1000 test signals \(([\d.]+) %\)")
    wrong = mnist1d_predictions != test.y
    assert int(errors) == wrong.sum().item()
    assert_quoted(accuracy, 100 * (1 - wrong.double().mean().item()), "MNIST-1D test accuracy")
    pairs = dict(((int(t), int(p)), int(n)) for t, p, n in
                 re.findall(r"(\d) → (\d) \((\d+)(?: signals)?\)", text_of("01_mnist1d")))
    assert len(pairs) == 6, pairs
    for (true, predicted), n in pairs.items():
        assert ((test.y == true) & (mnist1d_predictions == predicted)).sum().item() == n
    templates = torch.as_tensor(np.asarray(digit_templates()["x"]), dtype=torch.float64).reshape(10, -1)
    correlation = torch.corrcoef(templates)
    for a, b, value in [("7", "2", "0.93"), ("1", "5", "0.87")]:
        assert f"{a} and {b}" in text_of("01_mnist1d") and value in text_of("01_mnist1d")
        assert_quoted(value, correlation[int(a), int(b)].item(), f"correlation of {a} and {b}")
    (mirror,) = quoted("01_mnist1d", r"2 → 5 is not: .*?\(correlation ([−-][\d.]+)\)")
    assert_quoted(mirror.replace("−", "-"), correlation[2, 5].item(), "correlation of 2 and 5")


def test_02_vgg7_parameter_count():
    (count,) = quoted("02_hmt", r"small \(([\d\s]+) parameters\)")
    assert int(count.replace(" ", "")) == sum(p.numel() for p in VGG7().parameters())


def test_02_answer_key_accuracy_and_confusions(shared_data):
    model = load_pretrained("hmt", device="cpu")
    test = hmt(shared_data / "hmt", "test", image_size=64)
    with torch.no_grad():
        pred = torch.cat([model(batch).argmax(1) for batch in test.x.split(128)])
    right, total, accuracy = quoted("02_hmt", r"gets (\d+) of the (\d+) test tiles right \(([\d.]+) %\)")
    assert (int(right), int(total)) == ((pred == test.y).sum().item(), len(test))
    assert_quoted(accuracy, 100 * (pred == test.y).double().mean().item(), "HMT test accuracy")
    names = ["tumour", "stroma", "complex stroma", "lymphocytes", "debris", "mucosa", "adipose", "empty"]
    (errors,) = quoted("02_hmt", r"predicted\): (stroma → debris.*?tumour → complex stroma \d+)\.")
    found = re.findall(r"([a-z ]+?) → ([a-z ]+?) (\d+)", errors)
    assert len(found) == 8, found
    for true, predicted, n in found:
        t, p = names.index(true.strip()), names.index(predicted.strip())
        assert ((test.y == t) & (pred == p)).sum().item() == int(n), f"{true} → {predicted}"


def test_04_answer_key_multiply_adds():
    before, after = quoted("04_cam_gradcam", r"from ([\d.]+) to ([\d.]+) million multiply-adds")
    model = ShallowCNN1D()

    def multiply_adds(model):
        total = []
        hooks = [m.register_forward_hook(lambda m, i, o: total.append(
            m.in_channels * m.out_channels * m.kernel_size[0] * o.shape[-1] // m.groups))
            for m in model.modules() if isinstance(m, nn.Conv1d)]
        model(torch.zeros(1, 1, 40))
        for hook in hooks:
            hook.remove()
        return sum(total)

    assert_quoted(before, multiply_adds(model) / 1e6, "multiply-adds")
    model.features[2].stride = (1,)  # the second convolution without its stride
    assert_quoted(after, multiply_adds(model) / 1e6, "multiply-adds without the stride")


def _results_table(title: str) -> dict[str, list[str]]:
    """{method: cells} of the table of the site's results page that follows the paragraph starting with ``title``."""
    results = (REPO / "docs" / "results.md").read_text(encoding="utf-8")
    section = results[results.index(title):]
    rows = re.findall(r"^\| `([\w+]+)` \| (.*) \|$", section[:section.index("\n\n", section.index("| ---"))],
                      flags=re.MULTILINE)
    return {name: [cell.strip() for cell in cells.split("|")] for name, cells in rows}


@pytest.mark.parametrize("dataset, title", [("MNIST-1D", "**MNIST-1D**, shipped"), ("HMT", "**HMT**, shipped")])
def test_08_instructor_notes_quote_the_results_page_drop(dataset, title):
    (listing,) = quoted("08_project_evaluation", rf"{dataset} Drop %: (.*?)\.\s")
    quoted_drop = dict(re.findall(r"`([\w+]+)` ([\d.]+)", listing))
    table = _results_table(title)
    drop = {name: cells[1] for name, cells in table.items()}  # columns: n, Drop%, ...
    assert quoted_drop == drop, "the notes must list every row of the results page with its Drop %"
    assert list(quoted_drop) == sorted(drop, key=lambda name: float(drop[name])), "listed from best to worst"


def test_08_increase_step_over_the_hmt_sample():
    nb = nbformat.read(REPO / "solutions" / "08_project_evaluation.ipynb", as_version=4)
    (n,) = re.findall(r"^n_hmt = (\d+)\b", nb.cells[1].source, flags=re.MULTILINE)
    (step,) = quoted("08_project_evaluation", rf"over {n} HMT tiles it moves in steps of 100/{n} ≈ ([\d.]+) %")
    assert_quoted(step, 100 / int(n), "Increase % step")
    tiles, step_in_notes = quoted("08_project_evaluation",
                                  r"Increase % over (\d+) tiles moves\s+in steps of ([\d.]+) %")
    assert (tiles, step_in_notes) == (n, step)


def test_06_reference_values_are_the_results_pages():
    """06 quotes the course's results page (flat maps, Drop %, deletion AUC of the probability and logit scores)
    as full-run reference values; they must be its numbers, and the answer key must quote the same counts."""
    results = (REPO / "docs" / "results.md").read_text(encoding="utf-8")
    flat_del, flat_pres = re.search(r"on (\d+) of the 100 signals the model is so sure.*?returns (\d+) flat maps of "
                                    r"100", results.replace("\n", " ")).groups()
    assert quoted("06_meaningful_perturbation", r"the deletion game returns (\d+) flat maps, the preservation "
                                                r"game (\d+),") == (flat_del, flat_pres)
    assert quoted("06_meaningful_perturbation", r"it leaves (\d+) maps flat \(softmax\s+saturated\), the "
                                                r"preservation game (\d+)") == (flat_del, flat_pres)
    logit_drop, prob_drop, logit_del, prob_del = quoted(
        "06_meaningful_perturbation", r"no flat map instead\s+of \d+, Drop% (\d+\.\d+) instead of (\d+\.\d+), "
                                      r"deletion AUC (\d+\.\d+) instead of (\d+\.\d+)")
    table = {name: [c.strip() for c in line.split("|")]
             for name, line in re.findall(r"^\| `meaningful_perturbation`(.*?) \| 100 \| (.*) \|$", results,
                                          flags=re.MULTILINE)}
    probability, logit = table[""], table[', `score="logit"` (our deviation)']
    assert (prob_drop, prob_del) == (probability[0], probability[3]) and (logit_drop, logit_del) == (logit[0], logit[3])
    assert "not the log-probability, whose gradient vanishes as well" in text_of("06_meaningful_perturbation")


def test_07_answer_key_excited_units_and_created_evidence(mnist1d_sets):
    from course_utils.explainers.fgvis import FGVis
    from course_utils.metrics import created_evidence, excited_fraction

    without, with_defense = quoted("07_fgvis", r"([\d.]+) % of the ReLU units are excited without the defense and "
                                               r"([\d.]+) % with it")
    created_without, positive, n, created_with, low, high = quoted(
        "07_fgvis", r"([−\d.]+) logits on average without the defense \(positive on (\d) of the (\d) signals\) and "
                    r"([−\d.]+) with it.*?\(([−\d.]+) to \+([\d.]+) logits per signal\)")
    model = load_pretrained("mnist1d", device="cpu")
    x = mnist1d_sets[1].x[:4]
    assert n == "4"
    target = model(x).argmax(1)
    per_signal = []
    for defense, excited, created in ((False, without, created_without), (True, with_defense, created_with)):
        mask = FGVis(model, iterations=300, progress=False, defense=defense).attribute(x, target)
        assert_quoted(excited, 100 * excited_fraction(model, x, mask * x).mean().item(),
                      f"excited units, defense={defense}")
        evidence = created_evidence(model, x, mask * x, target)
        assert_quoted(created, evidence.mean().item(), f"created evidence, defense={defense}")
        if not defense:
            assert int(positive) == (evidence > 0).sum().item()
        per_signal += evidence.tolist()
    assert_quoted(low, min(per_signal), "lowest created evidence")
    assert_quoted(high, max(per_signal), "highest created evidence")


def test_07_answer_key_channel_permutations(shared_data):
    from course_utils.data import HMT_CLASSES
    from course_utils.metrics import channel_permutation_accuracy

    model = load_pretrained("hmt", device="cpu")
    test = hmt(shared_data / "hmt", "test", image_size=64)
    table = channel_permutation_accuracy(model, test.x, test.y, HMT_CLASSES)
    rgb, low, high = quoted("07_fgvis", r"Overall accuracy: (\d+) \(RGB\), (\d+)–(\d+) under the other orders")
    overall = table["all"]
    for text, value in ((rgb, overall["RGB"]), (low, overall.drop("RGB").min()), (high, overall.drop("RGB").max())):
        assert_quoted(text, value, "overall accuracy under the channel orders")
    assert (table[HMT_CLASSES[-1]] == 100).all(), "the answer says empty stays at 100 under every order"
    lympho = quoted("07_fgvis", r"Lymphocytes keep (\d+)–(\d+) in four orders but fall to (\d+) under BGR")
    column = table[HMT_CLASSES[3]]
    for text, value in zip(lympho, (column.drop(["RGB", "BGR"]).min(), column.drop(["RGB", "BGR"]).max(),
                                    column["BGR"])):
        assert_quoted(text, value, "lymphocyte accuracy under the channel orders")


TABLE_ROWS = {"00_xai_primer": "00 primer", "05_thakur_fischmeister": "05 Thakur–Fischmeister"}
"""The notebooks table's first column where it is not the notebook's number."""


def test_notebooks_page_table_gives_each_notebooks_run_time_within_the_class_budget():
    """The notebooks table of the site's notebooks page quotes the run time each notebook states in its first cell
    (measured with `make course`), and every one meets the class-time budget of 5 minutes in full mode."""
    from course_utils.authoring.course import NOTEBOOK_BUDGET_S

    page = (REPO / "docs" / "notebooks.md").read_text(encoding="utf-8")
    header = "| notebook | topic | exercise | full mode |"
    table = page[page.index(header):page.index("\n\n", page.index(header))]
    rows = {cells[0].strip(): cells[-1].strip() for cells in
            (line.strip("|").split(" | ") for line in table.splitlines()[2:])}
    notebooks = sorted((REPO / "solutions").glob("[0-9][0-9]_*.ipynb"))
    assert len(rows) == len(notebooks)
    for path in notebooks:
        first = nbformat.read(path, as_version=4).cells[0].source
        stated = re.search(r"\*\*Expected run time:\*\* (about ([\d.]+) (s|min)) in full mode", first)
        assert stated, f"{path.name}: the first cell must state 'about N s' or 'about N min' in full mode"
        row = TABLE_ROWS.get(path.stem, path.stem[:2])
        assert rows[row] == stated.group(1), f"docs/notebooks.md row {row!r} and {path.name} disagree"
        seconds = float(stated.group(2)) * (60 if stated.group(3) == "min" else 1)
        assert seconds <= NOTEBOOK_BUDGET_S, f"{path.name}: {stated.group(1)} is over the class-time budget"


@pytest.mark.parametrize("quoted_text, value, ok", [("19.6", 19.6533, True), ("19.7", 19.6533, True),
                                                    ("19.5", 19.6533, False), ("0.87", 0.8749, True),
                                                    ("-0.89", -0.8851, True), ("83", 81.4, False)])
def test_a_quoted_figure_may_differ_by_one_unit_in_its_last_place(quoted_text, value, ok):
    if ok:
        assert_quoted(quoted_text, value)
    else:
        with pytest.raises(AssertionError, match=f"the text says {quoted_text}"):
            assert_quoted(quoted_text, value)
