"""Backtest your own data (issue 25): the interactions format, the command line on a user's folder,
the protocol's options, the shared cold-customer rule, training budgets and attributes of any kind.

The fixture is a small real-shaped set written by :mod:`gpa_lib.recsys.data.interactions_synthetic`:
string ids, multi-label tags, no repeat purchases, users with a single interaction, times to the
second. Each test names the defect of the issue it guards.
"""

from __future__ import annotations

import json
import logging
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from test_recsys_data import hex_id, write_hm

from gpa_lib.bench.recsys import main as recsys_main
from gpa_lib.recsys.data import load_hm
from gpa_lib.recsys.data.hm import MissingImagesWarning  # noqa: F401 (the warning's home)
from gpa_lib.recsys.data.interactions import (
    MissingRowsWarning,
    load_interactions,
    sales_from_interactions,
)
from gpa_lib.recsys.data.interactions_synthetic import write_synthetic_interactions
from gpa_lib.recsys.data.layouts import detect_layout, load_data
from gpa_lib.recsys.eval.backtest import (
    BacktestConfig,
    candidates_at,
    evaluate,
    run_backtest,
    test_window,
)
from gpa_lib.recsys.eval.metrics import per_customer_auc
from gpa_lib.recsys.eval.own_data import (
    parse_params,
    suggest_params,
    suggest_protocol,
    suggest_search_space,
)
from gpa_lib.recsys.eval.protocol import (
    EmptySliceWarning,
    ProtocolConfig,
    TrainingBudgetWarning,
    protocol_params,
    run_protocol,
    validation_cutoff,
)
from gpa_lib.recsys.models import LSTMCustomerModel, Popularity, SASRec, make_model
from gpa_lib.recsys.models.anchors import implicit_available
from gpa_lib.recsys.models.fashion_dna import FashionDNA
from gpa_lib.recsys.models.features import ArticleEncoder

torch.set_num_threads(1)
test_window.__test__ = False

FAST = {"n_cutoffs": 2, "test_weeks": 2, "step_weeks": 2, "seeds": (0,), "n_boot": 20}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_synthetic_interactions(
        tmp_path_factory.mktemp("own") / "shop", n_users=60, n_items=120, n_events=1500, weeks=20
    )


@pytest.fixture(scope="module")
def data(folder):
    return load_interactions(folder)


# ---------------------------------------------------------------------- A: the format


def test_fixture_is_real_shaped(folder, data):
    events = pd.read_csv(folder / "interactions.csv", dtype=str)
    assert events["user"].str.startswith("u").all() and events["item"].str.startswith("it-").all()
    assert not events.duplicated(["user", "item"]).any()  # no repeat purchases
    assert (events["user"].value_counts() == 1).any()  # users with a single interaction
    assert events["time"].str.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d").all()
    assert pd.read_csv(folder / "items.csv")["tags"].str.contains("|", regex=False).any()
    assert len(data.transactions) == len(events)


def test_interactions_map_string_ids_both_ways_and_keep_seconds(folder, data):
    events = pd.read_csv(folder / "interactions.csv", dtype=str)
    tx = data.transactions
    assert tx["t_dat"].dt.second.any()  # time to the second, not cut to days
    users = data.customers["user_id"].to_numpy()[tx["customer"].to_numpy()]
    items = data.articles["item_id"].to_numpy()[tx["article"].to_numpy()]
    got = set(zip(users, items, tx["t_dat"].dt.strftime("%Y-%m-%d %H:%M:%S"), strict=True))
    assert got == set(zip(events["user"], events["item"], events["time"], strict=True))
    assert data.meta["item_attributes"] == {
        "tags": "multi",
        "genre": "categorical",
        "year": "numeric",
        "description": "text",
        "median_price": "numeric",
    }
    assert data.meta["user_attributes"] == {"segment": "categorical"}
    assert "segment" in data.customers.columns  # user attributes are kept, not dropped
    assert data.articles["price_tier"].isna().all()  # no tiers without product groups


def test_within_a_day_sequences_follow_the_clock_not_the_file(tmp_path):
    (tmp_path / "interactions.csv").write_text(
        "user,item,time\n"
        "ann,late,2024-01-01T18:00:05\n"  # the file lists the later purchase first
        "ann,early,2024-01-01T09:30:00\n"
        "bob,early,1704103200\n"  # Unix seconds
    )
    data = load_interactions(tmp_path)
    tx = data.transactions
    first_of_ann = tx.loc[tx["customer"] == 0].sort_values("order")
    assert data.articles["item_id"].to_numpy()[first_of_ann["article"]].tolist() == [
        "early",
        "late",
    ]
    model = SASRec(hidden=4, max_len=4, epochs=1, cold="lowest").fit(data)
    tokens, _ = model._sequences(model.history_)
    early, late = (
        2 + data.articles.index[data.articles["item_id"] == n][0] for n in ("early", "late")
    )
    assert tokens[0, 1:3].tolist() == [early, late]


def test_interactions_errors_name_file_column_and_line(tmp_path):
    (tmp_path / "interactions.csv").write_text("user,item,time\na,x,2024-01-01\nb,y,yesterday\n")
    with pytest.raises(ValueError, match=r"interactions.csv line 3, column 'time': .*'yesterday'"):
        load_interactions(tmp_path)
    (tmp_path / "interactions.csv").write_text("user,item,time,price\na,x,2024-01-01,\n")
    with pytest.raises(ValueError, match=r"line 2, column 'price'.*leave the column out"):
        load_interactions(tmp_path)
    (tmp_path / "interactions.csv").write_text("user,item,time,quantity\na,x,2024-01-01,0\n")
    with pytest.raises(ValueError, match=r"line 2, column 'quantity': '0'"):
        load_interactions(tmp_path)
    (tmp_path / "interactions.csv").write_text("user,item,time\na,x,2024-01-01\n")
    (tmp_path / "items.csv").write_text("item,colour\nx,red|blue\n")
    with pytest.raises(ValueError, match=r"items.csv: column\(s\) \['colour'\] have names"):
        load_interactions(tmp_path)
    (tmp_path / "items.csv").write_text("item,tags\nz,a|b\n")
    with pytest.warns(MissingRowsWarning, match="1 item"):
        load_interactions(tmp_path)


def test_quantity_repeats_rows_and_a_constant_price_is_no_attribute():
    events = pd.DataFrame(
        {
            "user": ["7", "7", "8"],
            "item": ["1", "2", "1"],
            "time": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-02"]),
            "quantity": [2, 1, 1],
            "price": [5.0, 5.0, 5.0],
        }
    )
    data = sales_from_interactions(events)
    assert len(data.transactions) == 4
    assert "median_price" not in data.articles.columns
    assert data.customers["user_id"].tolist() == ["7", "8"]  # integer ids kept as their text


def test_layouts_are_detected(folder, tmp_path):
    assert detect_layout(folder) == "interactions"
    assert detect_layout(write_hm(tmp_path / "hm")) == "hm"
    with pytest.raises(ValueError, match="holds none of interactions.csv"):
        detect_layout(tmp_path)
    with pytest.raises(ValueError, match="layout='xml' is not one of"):
        load_data(folder, "xml")


# ---------------------------------------------------------------------- B: the command line


def test_store_given_a_folder_points_to_data(folder, capsys):
    with pytest.raises(SystemExit):
        recsys_main(["--store", str(folder)])
    assert f"use --data {folder}" in capsys.readouterr().err


def test_command_line_runs_the_protocol_on_a_folder(folder, tmp_path, capsys):
    out = tmp_path / "result.json"
    argv = [
        "--data", str(folder), "--out", str(out),
        "--models", "popularity,static_cf,lstm",
        "--cutoffs", "2", "--test-weeks", "2", "--step-weeks", "2",
        "--seeds", "0", "--n-boot", "20", "--recent-weeks", "3",
        "--params", "lstm.steps=30", "--params", "lstm.hidden=8",
        "--params", "static_cf.epochs=2",
    ]  # fmt: skip
    with pytest.warns(TrainingBudgetWarning):
        assert recsys_main(argv) == 0
    printed = capsys.readouterr().out
    assert "protocol: {" in printed and "'exclude_seen': True" in printed  # defaults, first
    assert "all/auc" in printed.splitlines()[-len(["header", "3 models", "wrote"]) - 2]
    document = json.loads(out.read_text())
    protocol = document["protocol"]
    assert protocol["exclude_seen"] is True  # no repeats in the data: seen items left out
    assert protocol["recent_weeks"] == 3 and protocol["candidate_rule"] == "recent_sales"
    assert protocol["test_weeks"] == 2 and len(document["windows"]) == 2
    assert document["chosen_params"]["lstm"]["steps"] == 30
    assert document["chosen_params"]["lstm"]["horizon_days"] == 14  # follows test_weeks
    assert document["chosen_params"]["lstm"]["cold_customers"] == "popularity"
    assert all(s == 30 for s in document["training_steps"]["lstm"][0])
    assert all("steps" not in s for s in document["protocol"]["search_space"]["lstm"])
    assert document["provenance"]["commit"] and document["data"]["layout"] == "interactions"
    assert document["data"]["repeat_share"] == 0.0
    assert "NaN" not in out.read_text()
    assert not list(tmp_path.glob(".result.json.*"))  # written through a temporary file


def test_params_are_checked(data):
    assert parse_params(["lstm.steps=20", "sasrec.softmax=catalogue"]) == {
        "lstm": {"steps": 20},
        "sasrec": {"softmax": "catalogue"},
    }
    with pytest.raises(ValueError, match=r"model 'lstm' takes no parameter 'step'"):
        parse_params(["lstm.step=20"])
    with pytest.raises(ValueError, match=r"must look like model.parameter=value"):
        parse_params(["lstm=20"])
    with pytest.raises(TypeError, match=r"takes no parameter\(s\) \['nonsense'\]"):
        make_model("popularity", nonsense=1)


# ---------------------------------------------------------------------- the protocol's options


def test_validation_cutoff_must_leave_history(data):
    # 20 weeks of data; 3 test windows of 5 weeks, 4 apart, put the validation cutoff 2 weeks in
    config = ProtocolConfig(n_cutoffs=3, test_weeks=5, step_weeks=4)
    with pytest.raises(ValueError, match=r"leaves 14 day\(s\).*min_history_weeks=4"):
        validation_cutoff(data, config)
    short = ProtocolConfig(n_cutoffs=3, test_weeks=5, step_weeks=4, min_history_weeks=2)
    assert validation_cutoff(data, short) == data.start.normalize() + pd.Timedelta(weeks=2)


def test_recent_weeks_reaches_every_backtest_window(data):
    cutoffs = []
    for weeks in (1, 8):
        config = BacktestConfig(n_cutoffs=1, test_weeks=2, n_boot=10, recent_weeks=weeks)
        result = run_backtest(data, {"popularity": lambda fitted: Popularity()}, config)
        window = result.windows[0]
        expected, rule = candidates_at(data, window.cutoff, window.end, recent_weeks=weeks)
        np.testing.assert_array_equal(window.candidates, expected)
        cutoffs.append(len(window.candidates))
    assert cutoffs[0] < cutoffs[1]


def test_candidate_rules(data):
    cutoff = validation_cutoff(data, ProtocolConfig(**FAST))
    end = cutoff + pd.Timedelta(weeks=2)
    recent, _ = candidates_at(data, cutoff, end, 4, "recent_sales")
    ever, _ = candidates_at(data, cutoff, end, 4, "ever_sold")
    catalogue, _ = candidates_at(data, cutoff, end, 4, "catalogue")
    assert set(recent) <= set(ever) <= set(catalogue) and len(recent) < len(ever)
    with pytest.raises(ValueError, match="needs data.availability"):
        candidates_at(data, cutoff, end, 4, "availability")


def test_excluding_seen_items_matches_a_slow_loop(data):
    cutoff = validation_cutoff(data, ProtocolConfig(**FAST))
    window = test_window(data, cutoff, 2, candidate_rule="ever_sold", exclude_seen=True)
    assert window.seen.any() and not (window.seen & window.relevant).any()
    rng = np.random.default_rng(0)
    scores = rng.normal(size=window.relevant.shape)
    scores[window.seen] = 10.0  # a model that ranks what the customer already has first
    got = evaluate(scores, window)["all", "auc"]
    for row in range(len(window.customers)):
        keep = ~window.seen[row]
        pos = scores[row, keep][window.relevant[row, keep]]
        neg = scores[row, keep][~window.relevant[row, keep]]
        if len(pos) and len(neg):
            slow = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
            assert got[row] == pytest.approx(slow)
    # the same ranking without the exclusion is punished for the seen items it puts first
    plain = test_window(data, cutoff, 2, candidate_rule="ever_sold")
    assert np.nanmean(evaluate(scores, plain)["all", "auc"]) < np.nanmean(got) - 0.05
    assert per_customer_auc(scores, window.relevant, exclude=window.seen) == pytest.approx(
        got, nan_ok=True
    )


def test_protocol_takes_parameter_overrides_and_aims_the_lstm_at_the_window(data):
    config = ProtocolConfig(**FAST, min_steps=None)
    assert protocol_params(["lstm", "popularity"], config, None) == {
        "lstm": {"horizon_days": 14},
        "popularity": {},
    }
    payload = run_protocol(
        data,
        ["popularity"],
        "smoke",
        config,
        params={"popularity": {"window_days": 3}},
        search_space={"popularity": [{}]},
    )
    assert payload["chosen_params"]["popularity"]["window_days"] == 3


def test_a_misspelt_model_is_named_with_the_closest_one(data):
    with pytest.raises(
        ValueError, match=r"unknown model name\(s\) 'sasrc' \(did you mean 'sasrec'\?\)"
    ):
        run_protocol(data, ["sasrc"], "smoke", ProtocolConfig(**FAST))


def test_no_new_candidates_is_a_warning_and_null_not_nan(data):
    # 'ever_sold' at cutoffs where every item sold before: launch = first sale, so no new ones
    old_items = data.articles.index[data.articles["launch"] < data.start + pd.Timedelta(weeks=6)]
    keep = data.transactions["article"].isin(old_items)
    from gpa_lib.recsys.data import SalesData

    tx = data.transactions.loc[keep].reset_index(drop=True)
    only_old = SalesData(tx, data.articles.loc[old_items], data.customers, meta=data.meta)
    config = ProtocolConfig(**FAST, candidate_rule="ever_sold", min_history_weeks=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no "Mean of empty slice"
        with pytest.warns(EmptySliceWarning, match="no new"):
            payload = run_protocol(
                only_old, ["popularity"], "smoke", config, search_space={"popularity": [{}]}
            )
    assert payload["summary"]["popularity"]["cold/auc"]["mean"] is None
    assert "NaN" not in json.dumps(payload)


# ---------------------------------------------------------------------- C: cold customers


@pytest.mark.parametrize("name", ["implicit_als", "static_cf", "lstm"])
def test_cold_customers_get_the_shared_popularity_rule(data, name):
    if name == "implicit_als" and not implicit_available()[0]:
        pytest.skip(implicit_available()[1])
    cutoff = validation_cutoff(data, ProtocolConfig(**FAST))
    past = data.window(end=cutoff)
    buyers = np.unique(past.transactions["customer"])
    cold = np.setdiff1d(data.customers.index, buyers)[:3]
    articles = data.articles.index.to_numpy()
    extra = {"hidden": 8, "steps": 5} if name == "lstm" else {}
    model = make_model(name, "smoke", cold_customers="popularity", **extra).fit(past, until=cutoff)
    reference = Popularity(window_days=7).fit(past, until=cutoff).score(cold, articles)
    np.testing.assert_allclose(model.score(cold, articles), reference)
    assert np.ptp(reference[0]) > 0  # the fallback ranks; ALS's own gives all zeros
    if name == "implicit_als":
        own = make_model(name, "smoke").fit(past, until=cutoff).score(cold, articles)
        assert (own[np.isfinite(own)] == 0).all()  # (articles it never saw: -inf)
    warm = make_model(name, "smoke", cold_customers="popularity", **extra).fit(past, until=cutoff)
    assert not np.allclose(warm.score(buyers[:3], articles), reference)


# ---------------------------------------------------------------------- D: training budgets


@pytest.mark.parametrize("cls", [LSTMCustomerModel, SASRec])
def test_steps_are_a_budget_in_optimiser_steps(data, cls):
    extra = (
        {"dna_params": {"dna_dim": 4, "epochs": 1, "style_epochs": 1}}
        if cls is LSTMCustomerModel
        else {"cold": "lowest"}
    )
    for steps in (3, 17):
        model = cls(hidden=8, steps=steps, batch_customers=16, **extra).fit(data)
        assert model.steps_ == steps  # whatever the number of customers and batches
    default = cls(hidden=8, epochs=2, batch_customers=16, **extra).fit(data)
    n_train = 16  # batches per epoch: customers / 16, rounded up
    assert default.steps_ % 2 == 0 and default.steps_ >= n_train // 16


def test_defaults_follow_the_data(data):
    config = suggest_protocol(data)
    assert config.exclude_seen and config.min_steps == 300
    assert validation_cutoff(data, config) - data.start >= pd.Timedelta(weeks=4)
    params = suggest_params(data, ["lstm", "sasrec", "static_cf", "fashion_dna"], config)
    assert 16 <= params["lstm"]["batch_customers"] < 256  # not the 100,000-customer batch
    assert params["lstm"]["steps"] >= 300 and params["lstm"]["n_train_customers"] is None
    space = suggest_search_space(["lstm", "static_cf"], params)
    assert {s["steps"] for s in space["lstm"]} == {
        params["lstm"]["steps"],
        3 * params["lstm"]["steps"],
    }
    assert len({s["epochs"] for s in space["static_cf"]}) == 2  # the training length is tuned


# ---------------------------------------------------------------------- E: attributes


def test_fashion_dna_reads_multi_valued_numeric_and_text_attributes(data, caplog):
    with caplog.at_level(logging.INFO, logger="gpa_lib.recsys.models.features"):
        model = FashionDNA(dna_dim=4, hidden=0, image_dim=0, epochs=1, style_epochs=1).fit(data)
    assert set(model.encoder_.read) == {"tags", "genre", "year", "description", "median_price"}
    features = model.encoder_.transform(data.articles)
    tags = model.encoder_.vocabularies["tags"]
    assert len(tags) > 10  # one slot per tag, not one per combination
    first = data.articles["tags"].iloc[0].split("|")
    start = 0
    block = features[0, start : start + len(tags)]
    assert sorted(np.array(tags)[block > 0]) == sorted(first)
    assert "not read" in caplog.text


def test_fashion_attributes_log_what_they_do_not_read(tmp_path, caplog):
    data = load_hm(write_hm(tmp_path / "hm"), progress=False)
    with caplog.at_level(logging.INFO, logger="gpa_lib.recsys.models.features"):
        encoder = ArticleEncoder.for_data(data).fit(data.articles)
    assert "prod_name" in encoder.unread and "category" in encoder.read
    assert "prod_name" in caplog.text


# ---------------------------------------------------------------------- H&M's fashion-only assumptions


def test_hm_needs_only_ids_and_days(tmp_path):
    transactions = ["t_dat,customer_id,article_id"] + [
        f"2018-09-2{d},{hex_id(c)},010877501{a}" for d, c, a in [(0, 0, 5), (1, 1, 5), (2, 0, 4)]
    ]
    customers = ["customer_id,loyalty"] + [f"{hex_id(i)},gold" for i in range(2)]
    articles = ["article_id,fabric", "0108775015,cotton", "0108775014,wool"]
    data = load_hm(write_hm(tmp_path / "hm", transactions, customers, articles), progress=False)
    assert data.customers["loyalty"].tolist() == ["gold", "gold"]  # extra columns kept
    assert (data.transactions["price"] == 0).all() and "sales_channel_id" not in data.transactions
    assert data.articles["price_tier"].isna().all()  # a constant price has no tiers
    bad = ["t_dat,customer_id,article_id,price"] + [f"2018-09-20,{hex_id(0)},0108775015,"]
    root = write_hm(tmp_path / "hm2", bad, customers, articles)
    with pytest.raises(ValueError, match=r"column 'price': missing value \(no model reads"):
        load_hm(root, progress=False)


def test_hm_images_without_a_folder_is_an_error(tmp_path):
    root = write_hm(tmp_path / "hm")
    with pytest.raises(ValueError, match=r"images=True but .*images' is not a folder"):
        load_hm(root, images=True, progress=False)


def test_hm_constant_price_gives_no_tiers_but_a_varying_one_does(tmp_path):
    days = [f"2018-09-2{d}" for d in range(3)]
    sales = [(d, c, a) for d in days for c in range(2) for a in (1, 2)]  # one product group
    for price, tiers in (("0.05", 0), (None, 2)):
        rows = ["t_dat,customer_id,article_id,price"] + [
            f"{d},{hex_id(c)},{('0108775015', '0108775044')[a - 1]},{price or (0.01 * a)}"
            for d, c, a in sales
        ]
        data = load_hm(write_hm(tmp_path / str(price), transactions=rows), progress=False)
        sold = data.articles.loc[data.articles["launch"].notna(), "price_tier"]
        assert sold.notna().sum() == tiers  # one price: no "high" for every article


def test_schema_fixes_kinds_and_a_saved_folder_is_a_layout(folder, tmp_path):
    import shutil

    from gpa_lib.recsys.data import save

    shop = tmp_path / "shop"
    shutil.copytree(folder, shop)
    (shop / "schema.json").write_text('{"items": {"year": "categorical", "tags": "multi"}}')
    data = load_interactions(shop)
    assert data.meta["item_attributes"]["year"] == "categorical"
    assert isinstance(data.articles["year"].dtype, pd.CategoricalDtype)
    saved = save(data, tmp_path / "saved")
    assert detect_layout(saved) == "parquet"
    back = load_data(saved)
    assert back.meta["item_attributes"] == data.meta["item_attributes"]
    assert back.articles["tags"].tolist() == data.articles["tags"].tolist()
    (shop / "schema.json").write_text('{"items": {"year": "date"}}')
    with pytest.raises(ValueError, match=r"schema.json: items.year has kind='date', not one of"):
        load_interactions(shop)
