"""What a search text asks for (hub.crm.search_query), without a database."""

from hub.crm import search_query as sq


def test_a_phone_fragment_is_its_digits_and_nothing_else() -> None:
    cases = (("706-76", "70676"), ("+7 (916) 706-76-60", "79167067660"), ("8 916 706", "8916706"))
    for text, digits in cases:
        assert sq.parse(text) == sq.Query(text.lower(), (), digits)
    assert sq.parse("706") == sq.Query("706", ("706",), None)  # too short for a phone: a word


def test_words_and_fragment_are_folded() -> None:
    query = sq.parse("  ФЁДОРОВ   Алексей ")
    assert query.words == ("федоров", "алексей") and query.fragment == "федоров алексей"
    assert sq.parse("zakaz@sever").fragment == "zakaz@sever"
    assert sq.parse("ab").fragment is None and not sq.parse(" ").words and sq.parse(" ").empty


def test_word_forms() -> None:
    assert sq.strip_ending("звонки") == "звонк" and sq.strip_ending("иванова") == "иванов"
    assert sq.strip_ending("иванов") == "иванов"  # not -ов: every Иван would match
    assert sq.strip_ending("дом") == "дом" and sq.strip_ending("hello") == "hello"
    assert "звонк" in sq.alternatives("звонок", stem=True)
    assert "звонок" in sq.alternatives("звонки", stem=True)
    assert sq.alternatives("ветра", stem=False) == ["ветер", "ветор", "ветра"]


def test_queries_for_each_index_are_quoted() -> None:
    query = sq.parse('звонок "OR"')
    assert sq.fts5_match(query) == '("звонк"* OR "звонок"*) AND ("or"*)'
    assert sq.fts5_fragment(query) == '"звонок ""or"""'
    assert sq.tsquery(query) == "(звонк:* | звонок:*) & (or:*)"
    assert sq.like_fragment(sq.parse("a_b%c")) == "%a\\_b\\%c%"
    assert sq.id_range("contact") == (2 << 40, (3 << 40) - 1)
