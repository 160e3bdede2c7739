"""Who is watching (edge/viewer.py): the household's habits, read from a real HistoryStore and
the fixture bundle, pick the profile; session items move the probability the right way."""

from __future__ import annotations

import numpy as np
import pytest

from edge.bundle.reader import Bundle
from edge.context import Context
from edge.errors import QueryError
from edge.history import HistoryStore
from edge.viewer import ViewerConfig, ViewerGuess, ViewerModel

T0 = 1_700_000_000
# The fixture bundle's items i000..i039: tags cycle calm, loud, night, day (i % 4).
ALICE_ITEMS = [f"i{j:03d}" for j in range(40) if j % 4 in (0, 2)]  # calm, night
BOB_ITEMS = [f"i{j:03d}" for j in range(40) if j % 4 == 1]  # loud
KID_ITEMS = [f"i{j:03d}" for j in range(40) if j % 4 == 3]  # day


@pytest.fixture(scope="module")
def bundle(device_bundle) -> Bundle:
    return Bundle.open(device_bundle.bundle)


def _habits(store: HistoryStore, bundle: Bundle, profile: str, items: list[str], hours: list[int], weekdays: list[int],
            device: str, n: int) -> None:
    store.add_profile(profile)
    for k in range(n):
        item = items[k % len(items)]
        store.record(profile, item, "complete", T0 + k * 60, hour=hours[k % len(hours)], weekday=weekdays[k % len(weekdays)],
                     device=device, tags=bundle.items.tags[bundle.index[item]])


@pytest.fixture
def household(tmp_path, bundle):
    """alice: evenings on the TV at weekends, calm and night items; bob: weekday mornings on
    the speaker, loud items; kid: afternoons on the TV, day items (and fewer events)."""
    store = HistoryStore(tmp_path / "h.db", synchronous="NORMAL")
    _habits(store, bundle, "alice", ALICE_ITEMS[:16], [20, 21, 22], [5, 6], "tv", 60)
    _habits(store, bundle, "bob", BOB_ITEMS[:8], [7, 8], [0, 1, 2, 3, 4], "speaker", 40)
    _habits(store, bundle, "kid", KID_ITEMS[:6], [15, 16], [0, 2, 4], "tv", 20)
    yield store
    store.close()


def _prob(guesses: list[ViewerGuess], profile: str) -> float:
    return next(g.probability for g in guesses if g.profile == profile)


def test_context_alone_picks_the_profile_whose_habits_match(household, bundle):
    model = ViewerModel.from_history(household, catalogue=bundle)
    assert sorted(model.profiles) == ["alice", "bob", "kid"]  # the empty guest is no candidate
    for ctx, who in [(Context(21, 6, "tv"), "alice"), (Context(8, 1, "speaker"), "bob"), (Context(16, 2, "tv"), "kid")]:
        guesses = model.estimate(ctx)
        assert guesses[0].profile == who, (ctx, guesses)
        assert guesses[0].probability > 0.5
        assert [g.probability for g in guesses] == sorted((g.probability for g in guesses), reverse=True)


def test_probabilities_sum_to_one_and_cover_every_candidate(household, bundle):
    model = ViewerModel.from_history(household, catalogue=bundle)
    for ctx in [Context(h, d, dev) for h in (0, 8, 13, 21) for d in (0, 6) for dev in ("tv", "speaker")]:
        for items in ([], ["i001"], ["i000", "i003", "i005"]):
            guesses = model.estimate(ctx, items)
            assert sorted(g.profile for g in guesses) == ["alice", "bob", "kid"]
            assert sum(g.probability for g in guesses) == pytest.approx(1.0, abs=1e-9)
            assert all(0.0 <= g.probability <= 1.0 for g in guesses)


def test_session_items_move_the_probability_towards_their_owner(household, bundle):
    model = ViewerModel.from_history(household, catalogue=bundle)
    ctx = Context(12, 3, "tv")  # noon on a Thursday: nobody's habit
    before = model.estimate(ctx)
    after_one = model.estimate(ctx, [BOB_ITEMS[0]])
    after_three = model.estimate(ctx, BOB_ITEMS[:3])
    assert _prob(after_one, "bob") > _prob(before, "bob")
    assert _prob(after_three, "bob") > _prob(after_one, "bob")
    assert after_three[0].profile == "bob"
    # An item of the catalogue nobody watched still speaks through its tags (loud: bob's).
    unseen = BOB_ITEMS[-1]
    assert unseen not in BOB_ITEMS[:8]
    assert _prob(model.estimate(ctx, [unseen]), "bob") > _prob(before, "bob")


def test_embeddings_and_item_identity_each_add_evidence(household, bundle):
    ctx = Context(12, 3, "tv")
    base = ViewerConfig(item_weight=0.0, emb_weight=0.0, tag_gamma=1e6)  # tags smoothed to nothing
    plain = ViewerModel.from_history(household, catalogue=bundle, config=base)
    with_items = ViewerModel.from_history(household, catalogue=bundle, config=ViewerConfig(item_weight=1.0, emb_weight=0.0, tag_gamma=1e6))
    with_emb = ViewerModel.from_history(household, catalogue=bundle, config=ViewerConfig(item_weight=0.0, emb_weight=4.0, tag_gamma=1e6))
    p0 = _prob(plain.estimate(ctx, ALICE_ITEMS[:2]), "alice")
    assert _prob(with_items.estimate(ctx, ALICE_ITEMS[:2]), "alice") > p0
    assert _prob(with_emb.estimate(ctx, ALICE_ITEMS[:2]), "alice") > p0


def test_negative_session_events_say_nothing_about_taste(household, bundle):
    model = ViewerModel.from_history(household, catalogue=bundle)
    ctx = Context(12, 3, "tv")
    assert [g.probability for g in model.estimate(ctx, [(BOB_ITEMS[0], "skip")])] == [g.probability for g in model.estimate(ctx)]
    assert _prob(model.estimate(ctx, [(BOB_ITEMS[0], "complete")]), "bob") > _prob(model.estimate(ctx), "bob")


def test_unknown_items_are_ignored(household, bundle):
    model = ViewerModel.from_history(household, catalogue=bundle)
    ctx = Context(21, 6, "tv")
    plain = model.estimate(ctx, [BOB_ITEMS[0]])
    noisy = model.estimate(ctx, ["no-such-item", BOB_ITEMS[0], "also-unknown"])
    assert [(g.profile, g.probability) for g in noisy] == [(g.profile, g.probability) for g in plain]
    assert "2 unknown ignored" in next(g.reason for g in noisy if g.profile == "bob")


def test_without_a_catalogue_history_tags_still_count(household):
    model = ViewerModel.from_history(household)  # tags come from the stored events
    ctx = Context(12, 3, "tv")
    assert _prob(model.estimate(ctx, BOB_ITEMS[:3]), "bob") > _prob(model.estimate(ctx), "bob")
    # An item only the catalogue knows is unknown here: ignored.
    assert model.estimate(ctx, [BOB_ITEMS[-1]])[0].probability == model.estimate(ctx)[0].probability


def test_evidence_explains_the_guess(household, bundle):
    best = ViewerModel.from_history(household, catalogue=bundle).estimate(Context(8, 1, "speaker"), BOB_ITEMS[:2])[0]
    evidence = dict(best.evidence)
    assert best.profile == "bob"
    assert set(evidence) == {"activity", "hour", "weekday", "device", "session items"}
    assert evidence["device"] > 0 and evidence["hour"] > 0 and evidence["session items"] > 0
    assert best.reason.startswith("mostly ")


def test_guest_counts_only_with_history_and_profiles_can_be_named(household, bundle):
    assert "guest" not in ViewerModel.from_history(household, bundle).profiles
    household.record("guest", "i000", "play", T0, hour=3, weekday=0, device="tv")
    assert "guest" in ViewerModel.from_history(household, bundle).profiles
    assert ViewerModel.from_history(household, bundle, profiles=["bob", "kid"]).profiles == ["bob", "kid"]


def test_same_history_gives_the_same_estimate(household, bundle):
    a = ViewerModel.from_history(household, bundle).estimate(Context(21, 6, "tv"), ALICE_ITEMS[:3])
    b = ViewerModel.from_history(household, bundle).estimate(Context(21, 6, "tv"), ALICE_ITEMS[:3])
    assert a == b


def test_household_without_history_raises_query_error(tmp_path):
    with HistoryStore(tmp_path / "empty.db", synchronous="NORMAL") as store:
        with pytest.raises(QueryError, match="no household profile has any event"):
            ViewerModel.from_history(store)  # only the empty guest profile
        store.add_profile("alice")
        with pytest.raises(QueryError, match="record some events first"):
            ViewerModel.from_history(store, profiles=["alice"])
    with pytest.raises(QueryError, match="no household profile"):
        ViewerModel.from_events({})


@pytest.mark.parametrize("call, words", [
    (lambda m: m.estimate("21:00"), "expected an edge.context.Context"),
    (lambda m: m.estimate(Context(24, 0)), "context.hour=24"),
    (lambda m: m.estimate(Context(3, 7)), "context.weekday=7"),
    (lambda m: m.estimate(Context(3, 1), "i001"), "not one string"),
])
def test_bad_requests_raise_query_error(household, call, words):
    model = ViewerModel.from_history(household)
    with pytest.raises(QueryError, match=words):
        call(model)


@pytest.mark.parametrize("kwargs, words", [({"window": 0}, "window=0"), ({"profiles": "alice"}, "not one string")])
def test_bad_build_arguments_raise_query_error(household, kwargs, words):
    with pytest.raises(QueryError, match=words):
        ViewerModel.from_history(household, **kwargs)


def test_bad_config_raises_query_error():
    with pytest.raises(QueryError, match="ViewerConfig.hour_alpha=0"):
        ViewerConfig(hour_alpha=0)
    with pytest.raises(QueryError, match="ViewerConfig.session_weight=-1"):
        ViewerConfig(session_weight=-1)


def test_estimate_cost_does_not_grow_with_history(household, bundle):
    # O(profiles x session items): the model keeps arrays over profiles, not events.
    model = ViewerModel.from_history(household, bundle)
    assert model._p.log_hour.shape == (3, 24) and model._p.log_weekday.shape == (3, 7)
    assert all(v.shape == (3,) for v in model._p.item_counts.values())
    assert np.isfinite(model._p.log_prior).all()
