"""The course site (``course_utils.authoring.site``, ``make book``): Sphinx + myst-nb over executed notebooks.

The site is built once per module from all the solution notebooks: ``00_setup_and_tour`` executed for real in fast
mode (it draws a figure), the other nine prepared by papermill without running (the injected-parameters cell, no
outputs), which is enough for navigation, answer keys, markers and math. The browser test reads the site in Debian's
``chromium`` (never a downloaded browser) over a 127.0.0.1 server with every other request blocked; it is skipped
without chromium, except where ``COURSE_REQUIRE_BROWSER=1`` (``.ci/run``): there it fails.
"""
import functools
import html
import http.server
import os
import re
import shutil
import threading
from pathlib import Path

import nbformat
import pytest

from course_utils.authoring import site

REPO = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((REPO / "solutions").glob(site.NOTEBOOKS))
EXECUTED = "00_setup_and_tour"
MATH_PAGE = "03_gradient_methods"  # display math ($$ … \frac …) in its Markdown
MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION", "NBVAL_CHECK_OUTPUT")


def _code(source, tags=()):
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = list(tags)
    return cell


def test_site_page_hides_the_machinery_and_boxes_answer_keys():
    nb = nbformat.v4.new_notebook()
    answer = nbformat.v4.new_markdown_cell("**Answer key.** See:\n\n````python\nx = 1\n````")
    answer.metadata["tags"] = ["solution_only"]
    nb.cells = [_code("fast = True", ["injected-parameters"]),
                _code("# NBVAL_CHECK_OUTPUT\ny = 2\n### BEGIN SOLUTION\nz = y\n    ### END SOLUTION\nprint(z)"),
                answer, _code("w = 3", ["solution_only"])]
    page = site.site_page(nb)
    assert page.cells[0].metadata["tags"] == ["injected-parameters", "remove-cell"]
    assert page.cells[1].source == "y = 2\nz = y\nprint(z)"
    assert page.cells[2].source == ("`````{admonition} Answer key\n:class: answer-key\n\n"
                                    "**Answer key.** See:\n\n````python\nx = 1\n````\n`````")
    assert page.cells[3].source == "w = 3" and page.cells[3].metadata["tags"] == ["solution_only"]
    assert "### BEGIN SOLUTION" in nb.cells[1].source and nb.cells[0].metadata["tags"] == ["injected-parameters"], \
        "the executed notebook itself is left as it was"


def test_site_needs_executed_notebooks(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert site.main(["--executed", str(tmp_path / "empty"), "--out", str(tmp_path / "site")]) == 2
    assert "make course" in capsys.readouterr().err
    assert not (tmp_path / "site").exists()


def test_site_stages_the_changelog_and_names_notebooks_not_executed(tmp_path):
    docs, executed, solutions = tmp_path / "repo" / "docs", tmp_path / "executed", tmp_path / "solutions"
    for folder in (docs, executed, solutions):
        folder.mkdir(parents=True)
    (docs / "index.md").write_text("# Site\n")
    (tmp_path / "repo" / "CHANGELOG.md").write_text("# Changelog\n")
    nb = nbformat.v4.new_notebook(cells=[_code("fast = True", ["injected-parameters"])])
    for name in ("01_a.ipynb", "02_b.ipynb"):
        nbformat.write(nb, solutions / name)
    nbformat.write(nb, executed / "01_a.ipynb")
    (executed / "notes.ipynb").write_text("not a course notebook")
    assert site.stage(executed, docs, tmp_path / "src") == ["01_a.ipynb"]
    assert (tmp_path / "src" / "changelog.md").read_text() == "# Changelog\n"
    staged = nbformat.read(tmp_path / "src" / site.COURSE_FOLDER / "01_a.ipynb", as_version=4)
    assert "remove-cell" in staged.cells[0].metadata["tags"]
    assert site.not_executed(executed, solutions) == ["02_b.ipynb"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(site folder, notebook names): every solution notebook, one executed in fast mode, built into a site."""
    import papermill

    tmp = tmp_path_factory.mktemp("site")
    executed, work = tmp / "executed", tmp / "solutions"
    executed.mkdir()
    work.mkdir()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("COURSE_DATA_DIR", str(tmp / "data"))  # the kernel's data home: nothing written elsewhere
        for path in SOLUTIONS:
            shutil.copy(path, work / path.name)
            run = path.stem == EXECUTED
            papermill.execute_notebook(work / path.name, executed / path.name, parameters={"fast": True},
                                       prepare_only=not run, cwd=str(work), kernel_name="python3",
                                       progress_bar=False)
    names = site.build(executed, tmp / "site")
    return tmp / "site", names


def text_of(page: Path) -> str:
    """The visible text of an HTML page, roughly: tags removed, entities decoded."""
    body = re.sub(r"<!--.*?-->", " ", page.read_text(encoding="utf-8"), flags=re.S)
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S)
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)))


def test_site_has_every_notebook_with_previous_and_next(built):
    out, names = built
    assert names == [p.name for p in SOLUTIONS]
    index = (out / "index.html").read_text(encoding="utf-8")
    for name in names:
        page = out / site.COURSE_FOLDER / f"{Path(name).stem}.html"
        assert page.is_file(), name
        assert f'href="{site.COURSE_FOLDER}/{Path(name).stem}.html"' in index, f"the index links {name}"
        source = page.read_text(encoding="utf-8")
        assert 'class="left-prev"' in source and 'class="right-next"' in source, f"{name}: previous and next"


def test_site_shows_answer_keys_and_hides_injected_cells_and_markers(built):
    out, _ = built
    for path in SOLUTIONS:
        text = text_of(out / site.COURSE_FOLDER / f"{path.stem}.html")
        for marker in MARKERS:
            assert marker not in text, f"{path.stem}: {marker} shown"
        injected = nbformat.read(out.parent / "executed" / path.name, as_version=4).cells
        (parameters,) = [c.source for c in injected if "injected-parameters" in c.metadata.get("tags", [])]
        assert parameters.strip().splitlines()[-1] == "fast = True"
        assert not re.search(r"#\s*Parameters\s+fast = True", text), f"{path.stem}: the injected cell shown"
        keys = [c for c in nbformat.read(path, as_version=4).cells
                if c.cell_type == "markdown" and "solution_only" in c.metadata.get("tags", [])]
        if keys:
            assert "Answer key" in text
            words = re.search(r"[A-Za-z]+(?: [A-Za-z]+){4}", keys[0].source.split("\n", 1)[1]).group(0)
            assert words in text, f"{path.stem}: the answer key's text ({words!r})"
    figures = list((out / "_images").glob("*.png"))
    assert figures, "the executed notebook's figures are on the site"
    executed_page = (out / site.COURSE_FOLDER / f"{EXECUTED}.html").read_text(encoding="utf-8")
    assert re.search(r'<img [^>]*src="\.\./_images/[^"]+\.png"', executed_page)
    assert (out / "_static" / "mathjax" / "tex-chtml.js").is_file(), "MathJax is served by the site itself"


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        message = "Debian's chromium (apt-get install chromium) is not installed: the site's browser test needs it"
        if os.environ.get("COURSE_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture
def served(built):
    """The built site over http://127.0.0.1:<port>/ (a thread of this process)."""
    out, names = built
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", names
    server.shutdown()
    server.server_close()


@pytest.mark.browser
def test_site_in_chromium_offline_math_figures_and_navigation(served):
    from playwright.sync_api import sync_playwright

    base, names = served
    blocked = []

    def only_the_site(route):
        if route.request.url.startswith(base + "/"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            context.route("**/*", only_the_site)
            pg = context.new_page()
            pg.set_default_timeout(60_000)

            pg.goto(f"{base}/{site.COURSE_FOLDER}/{MATH_PAGE}.html")
            pg.wait_for_function("() => document.querySelectorAll('mjx-container').length > 0")
            pg.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
            pg.evaluate("() => MathJax.startup.promise")
            article = pg.locator("article").inner_text()
            assert "$$" not in article and "\\frac" not in article, "raw LaTeX left on the page"
            assert pg.locator("mjx-container[display='true']").count() > 0, "display equations typeset"

            pg.goto(f"{base}/{site.COURSE_FOLDER}/{EXECUTED}.html")
            images = pg.locator("article img")
            assert images.count() > 0
            assert all(pg.evaluate("(img) => img.complete && img.naturalWidth > 0", handle)
                       for handle in images.element_handles()), "every figure loads"

            # The sidebar and the previous / next links are plain HTML: followed without scripts, which is faster.
            static = browser.new_context(viewport={"width": 1400, "height": 1000}, java_script_enabled=False)
            static.route("**/*", only_the_site)
            pg = static.new_page()
            pg.set_default_timeout(60_000)
            pg.goto(f"{base}/index.html")
            sidebar = pg.locator("nav.bd-docs-nav a.reference.internal")
            linked = {href.split("/")[-1].split("#")[0] for href in
                      (a.get_attribute("href") for a in sidebar.element_handles())}
            stems = [Path(name).stem for name in names]
            assert {f"{stem}.html" for stem in stems} <= linked, "the sidebar lists every notebook"
            pg.locator(f"nav.bd-docs-nav a[href$='{stems[0]}.html']").first.click()
            visited = []
            while True:
                pg.wait_for_load_state("domcontentloaded")
                visited.append(pg.url.split("/")[-1].split("#")[0])
                if visited[-1] == f"{stems[-1]}.html":
                    break
                assert len(visited) <= len(stems), f"next links went astray: {visited}"
                pg.locator("a.right-next").click()
            assert visited == [f"{stem}.html" for stem in stems], "next goes through the notebooks in course order"
            pg.locator("a.left-prev").click()
            pg.wait_for_load_state("domcontentloaded")
            assert pg.url.split("/")[-1] == f"{stems[-2]}.html"
        finally:
            browser.close()
    assert blocked == [], f"the site asked for outside resources: {blocked}"
