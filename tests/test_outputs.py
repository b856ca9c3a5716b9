"""Renders of an output notebook (hub_service.outputs.render), without a Hub."""

import nbformat

from hub_service.outputs import render


def _notebook_with_streams(tmp_path):
    """An executed notebook whose one cell printed three lines in three flushes, then to stderr."""
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("for i in range(3): print('line', i)")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"line {i}\n") for i in range(3)]
    cell.outputs.append(nbformat.v4.new_output("stream", name="stderr", text="warned\n"))
    nb.cells.append(cell)
    path = tmp_path / "output.ipynb"
    nbformat.write(nb, str(path))
    return path


def test_markdown_keeps_one_outputs_printed_lines_in_one_block(tmp_path):
    md = render(_notebook_with_streams(tmp_path), "md").decode()
    assert "    line 0\n    line 1\n    line 2\n" in md
    # a different stream is a different output, and stays apart
    assert "line 2\n    warned" not in md and "    warned\n" in md


def test_html_keeps_one_outputs_printed_lines_in_one_block(tmp_path):
    html = render(_notebook_with_streams(tmp_path), "html").decode()
    assert "line 0\nline 1\nline 2\n" in html
