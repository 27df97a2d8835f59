from chatgate.engines.local.stops import StopFilter


def feed(stops: list[str], pieces: list[str]) -> tuple[str, bool]:
    f = StopFilter(stops)
    out = "".join(f.push(p) for p in pieces)
    if not f.stopped:
        out += f.flush()
    return out, f.stopped


def test_no_stops_passes_everything() -> None:
    assert feed([], ["a", "b"]) == ("ab", False)


def test_stop_inside_one_piece() -> None:
    assert feed(["END"], ["abcENDxyz"]) == ("abc", True)


def test_stop_split_across_pieces_is_never_shown() -> None:
    f = StopFilter(["END"])
    assert f.push("abE") == "ab"  # "E" is held back: it may start "END"
    assert f.push("N") == ""
    assert f.push("D and more") == ""
    assert f.stopped


def test_held_text_released_when_it_cannot_be_a_stop() -> None:
    assert feed(["END"], ["abE", "Nx"]) == ("abENx", False)


def test_earliest_of_several_stops_wins() -> None:
    assert feed(["c", "b"], ["abc"]) == ("a", True)


def test_empty_stop_strings_are_ignored() -> None:
    assert feed([""], ["abc"]) == ("abc", False)
