"""Issue 12 kind 2 in the app: the Data page keeps the reader's reason (a file that is
not UTF-8 is named as such), offers the encoding and delimiter under *File format*, and
reads a semicolon file's header as its columns."""

from __future__ import annotations

from tests.app_fixtures import empty_env, new_app, no_errors, metric_value  # noqa: F401  (fixtures)


def test_data_page_names_a_non_utf8_file_and_reads_it_with_an_encoding(empty_env, tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("id,text\n1,Un café crème\n2,Où est la gare\n3,Grüße\n".encode("latin-1"))
    at = new_app(timeout=180).run()
    at.radio(key="w.source_kind").set_value("Path or glob").run()
    at.text_input(key="w.source_path").input(str(path)).run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any("latin.csv" in e and "not UTF-8" in e and "Encoding under File format" in e for e in errors), errors
    at.text_input(key="w.encoding").input("latin-1").run()
    no_errors(at)
    at.selectbox(key="w.text_column").set_value("text").run()
    at.button(key="w.load").click().run()
    no_errors(at)
    assert metric_value(at, "Rows") == "3"
    assert any("Un café crème" in str(df.value.to_dict()) for df in at.dataframe)


def test_data_page_reads_a_semicolon_file_and_takes_a_delimiter(empty_env, tmp_path):
    path = tmp_path / "semi.csv"
    path.write_text("id;text\n1;How do I make pancakes?\n2;What is a black hole?\n")
    at = new_app(timeout=180).run()
    at.radio(key="w.source_kind").set_value("Path or glob").run()
    at.text_input(key="w.source_path").input(str(path)).run()
    no_errors(at)
    assert "text" in at.selectbox(key="w.text_column").options
    at.selectbox(key="w.delimiter").set_value("comma ,").run()  # forcing the wrong one reads one column
    assert at.selectbox(key="w.text_column").options == ["id;text"]
    at.selectbox(key="w.delimiter").set_value("semicolon ;").run()
    at.selectbox(key="w.text_column").set_value("text").run()
    at.button(key="w.load").click().run()
    no_errors(at)
    assert metric_value(at, "Rows") == "2"
