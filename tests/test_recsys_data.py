"""The sales data model: validation, Parquet round trips, and the H&M loader on tiny files written here."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pandas as pd
import pytest

from gpa_lib.recsys.data import ARTICLE_ATTRIBUTES, SIZES, SalesData, load, load_hm, save
from gpa_lib.recsys.data.hm import MissingImagesWarning
from gpa_lib.recsys.sim.simulate import simulate

# ---------------------------------------------------------------------- a tiny hand-made store


def tiny_frames():
    transactions = pd.DataFrame(
        {
            "t_dat": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-02", "2024-01-03"]),
            "customer": [10, 10, 11, 10],
            "article": [1, 2, 1, 3],
            "price": [19.95, 49.95, 19.95, 9.95],
            "order": [0, 0, 1, 2],
            "returned": [True, False, None, False],
            "size": ["M", "L", None, "M"],
        }
    )
    articles = pd.DataFrame(
        {
            "article": [1, 2, 3],
            "category": ["tshirt", "coat", "tshirt"],
            "colour": ["black", "navy", "white"],
            "launch": pd.to_datetime(["2023-12-30", "2024-01-01", "2024-01-02"]),
        }
    )
    customers = pd.DataFrame({"customer": [10, 11, 12], "age": [25, 41, 33]})
    return transactions, articles, customers


@pytest.fixture
def tiny():
    images = np.random.default_rng(0).integers(0, 256, size=(3, 8, 8, 3), dtype=np.uint8)
    return SalesData.from_frames(*tiny_frames(), images=images, meta={"source": "test"})


def test_from_frames_gives_the_model_dtypes(tiny):
    tx = tiny.transactions
    assert str(tx["t_dat"].dtype) == "datetime64[ns]"
    assert [str(tx[c].dtype) for c in ("customer", "article", "order")] == ["int64"] * 3
    assert str(tx["returned"].dtype) == "boolean" and tx["returned"].isna().sum() == 1
    assert list(tx["size"].cat.categories) == list(SIZES) and tx["size"].isna().sum() == 1
    for column in ARTICLE_ATTRIBUTES:
        assert isinstance(tiny.articles[column].dtype, pd.CategoricalDtype)
    assert tiny.articles["season"].isna().all()  # attributes the source lacks are all-missing
    assert repr(tiny).startswith("SalesData(4 items in 3 orders")


def test_parquet_round_trip_is_exact_and_atomic(tmp_path, tiny):
    folder = tmp_path / "store"
    save(tiny, folder)
    back = load(folder)
    for name in ("transactions", "articles", "customers"):
        pd.testing.assert_frame_equal(getattr(tiny, name), getattr(back, name), check_exact=True)
    np.testing.assert_array_equal(tiny.images, back.images)
    assert back.meta == {"source": "test"} and back.truth is None
    # saving again replaces the folder as a whole and leaves no temporary folders behind
    smaller = tiny.window(end="2024-01-02")
    save(smaller, folder)
    assert len(load(folder).transactions) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]
    # a folder that is not a SalesData folder is never replaced
    (tmp_path / "mine").mkdir()
    with pytest.raises(ValueError, match="not a SalesData folder"):
        save(tiny, tmp_path / "mine")
    with pytest.raises(ValueError, match="no manifest.json"):
        load(tmp_path / "mine")


def test_simulated_store_round_trips_with_images(tmp_path):
    data = simulate(300, 6, seed=1, progress=False, articles_per_week=8)
    back = load(save(data, tmp_path / "sim"))
    for name in ("transactions", "articles", "customers"):
        pd.testing.assert_frame_equal(getattr(data, name), getattr(back, name), check_exact=True)
    np.testing.assert_array_equal(data.images, back.images)
    pd.testing.assert_frame_equal(data.availability, back.availability, check_exact=True)
    assert back.meta["config"]["n_customers"] == 300


def test_window_filters_and_drops_truth():
    data = simulate(200, 4, seed=2, progress=False, articles_per_week=5)
    cutoff = data.start + pd.Timedelta(days=14)
    before, after = data.window(end=cutoff), data.window(start=cutoff)
    assert len(before.transactions) + len(after.transactions) == len(data.transactions)
    assert (before.transactions["t_dat"] < cutoff).all() and (
        after.transactions["t_dat"] >= cutoff
    ).all()
    assert before.truth is None and data.truth is not None
    assert before.articles is data.articles
    # availability as known before the cutoff: nothing starts on or after it, nothing ends after it
    known = before.availability
    assert (known["on_sale_from"] < cutoff).all() and (known["on_sale_until"] <= cutoff).all()
    np.testing.assert_array_equal(
        before.on_sale(cutoff - pd.Timedelta(days=1)), data.on_sale(cutoff - pd.Timedelta(days=1))
    )


def test_availability_spells_are_validated():
    transactions, articles, customers = tiny_frames()
    bad = pd.DataFrame(
        {
            "article": [1, 99],
            "on_sale_from": pd.to_datetime(["2024-01-01", "2024-01-01"]),
            "on_sale_until": pd.to_datetime(["2023-12-01", "2024-02-01"]),
        }
    )
    with pytest.raises(ValueError, match=r"1 row\(s\) refer to article id\(s\) not in") as info:
        SalesData.from_frames(transactions, articles, customers, availability=bad)
    assert "1 spell(s) with on_sale_from >= on_sale_until" in str(info.value)
    data = SalesData.from_frames(transactions, articles, customers)
    with pytest.raises(ValueError, match="no availability table"):
        data.on_sale("2024-01-01")


# ---------------------------------------------------------------------- validation names what and how many


def _broken(change):
    transactions, articles, customers = tiny_frames()
    change(transactions, articles, customers)
    return transactions, articles, customers


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda t, a, c: t.__setitem__("article", [1, 2, 7, 8]),
            r"2 row\(s\) refer to 2 article id\(s\) not in the articles table",
        ),
        (
            lambda t, a, c: t.__setitem__("customer", [10, 10, 99, 10]),
            r"1 row\(s\) refer to 1 customer id\(s\) not in the customers",
        ),
        (
            lambda t, a, c: t.__setitem__("price", [19.95, -1.0, -2.0, 9.95]),
            r"2 row\(s\) with a negative price",
        ),
        (
            lambda t, a, c: a.__setitem__("launch", pd.to_datetime(["2024-01-02"] * 3)),
            r"2 row\(s\) dated before their article's launch",
        ),
        (
            lambda t, a, c: t.__setitem__("order", [0, 0, 0, 2]),
            r"1 order\(s\) span more than one day or customer",
        ),
        (lambda t, a, c: a.__setitem__("article", [1, 1, 3]), r"1 duplicated article id"),
    ],
)
def test_inconsistent_tables_raise_what_and_how_many(change, message):
    with pytest.raises(ValueError, match=message):
        SalesData.from_frames(*_broken(change))


def test_dates_out_of_order_and_bad_dtypes_are_named(tiny):
    shuffled = tiny.transactions.iloc[[2, 0, 1, 3]].reset_index(drop=True)
    with pytest.raises(ValueError, match=r"dates out of order, 1 row\(s\)"):
        SalesData(shuffled, tiny.articles, tiny.customers)
    with pytest.raises(
        ValueError, match=r"transactions\['order'\] has dtype float64, expected int64"
    ):
        SalesData(tiny.transactions.astype({"order": float}), tiny.articles, tiny.customers)
    with pytest.raises(ValueError, match=r"transactions lacks column\(s\) \['size'\]"):
        SalesData(tiny.transactions.drop(columns="size"), tiny.articles, tiny.customers)
    with pytest.raises(ValueError, match=r"articles\['colour'\] has dtype"):
        SalesData(tiny.transactions, tiny.articles.astype({"colour": object}), tiny.customers)
    with pytest.raises(ValueError, match=r"images must be uint8 of shape \(n_articles=3"):
        SalesData(
            tiny.transactions,
            tiny.articles,
            tiny.customers,
            images=np.zeros((2, 8, 8, 3), np.uint8),
        )
    with pytest.raises(ValueError, match="size values"):
        SalesData.from_frames(
            *_broken(lambda t, a, c: t.__setitem__("size", ["M", "XXL", None, "S"]))
        )


# ---------------------------------------------------------------------- H&M loader on tiny files

ARTICLE_HEADER = (
    "article_id,product_code,prod_name,product_type_no,product_type_name,product_group_name,"
    "graphical_appearance_no,graphical_appearance_name,colour_group_code,colour_group_name,"
    "perceived_colour_value_id,perceived_colour_value_name,perceived_colour_master_id,"
    "perceived_colour_master_name,department_no,department_name,index_code,index_name,"
    "index_group_no,index_group_name,section_no,section_name,garment_group_no,garment_group_name,"
    "detail_desc"
)
ARTICLE_ROWS = [
    "0108775015,0108775,Strap top,253,Vest top,Garment Upper body,1010016,Solid,09,Black,4,Dark,5,Black,1676,"
    'Jersey Basic,A,Ladieswear,1,Ladieswear,16,Womens Everyday Basics,1002,Jersey Basic,"Jersey top, narrow straps."',
    "0108775044,0108775,Strap top,253,Vest top,Garment Upper body,1010016,Solid,10,White,3,Light,9,White,1676,"
    "Jersey Basic,A,Ladieswear,1,Ladieswear,16,Womens Everyday Basics,1002,Jersey Basic,Jersey top.",
    "0110065001,0110065,OP T-shirt,306,Bra,Underwear,1010016,Solid,09,Black,4,Dark,5,Black,1339,"
    "Clean Lingerie,B,Lingeries/Tights,1,Ladieswear,61,Womens Lingerie,1017,Under-Nightwear,",
    "0111565001,0111565,20 den tights,304,Underwear Tights,Socks & Tights,1010017,Stripe,09,Black,4,Dark,5,"
    "Black,3608,Tights basic,B,Lingeries/Tights,1,Ladieswear,62,Womens Nightwear,1021,Socks and Tights,Tights.",
]


def hex_id(i: int) -> str:
    return hashlib.sha256(str(i).encode()).hexdigest()


def write_hm(root, transactions=None, customers=None, articles=None):
    """Tiny H&M-shaped files: 4 articles, 5 customers, 12 transactions over 3 days (unless replaced)."""
    root.mkdir(parents=True, exist_ok=True)
    if customers is None:
        customers = [
            "customer_id,FN,Active,club_member_status,fashion_news_frequency,age,postal_code"
        ]
        customers += [
            f"{hex_id(i)},{'1.0' if i % 2 else ''},{'1.0' if i % 3 else ''},ACTIVE,NONE,{20 + i},{hex_id(100 + i)}"
            for i in range(4)
        ]
        customers.append(f"{hex_id(4)},,,PRE-CREATE,Regularly,,{hex_id(104)}")
    if articles is None:
        articles = [ARTICLE_HEADER, *ARTICLE_ROWS]
    if transactions is None:
        sales = [
            ("2018-09-20", 0, "0108775015", 0.0508),
            ("2018-09-20", 0, "0108775044", 0.0305),
            ("2018-09-20", 1, "0108775015", 0.0508),
            ("2018-09-20", 2, "0110065001", 0.0169),
            ("2018-09-21", 0, "0111565001", 0.0169),
            ("2018-09-21", 3, "0108775015", 0.0490),
            ("2018-09-21", 3, "0108775015", 0.0490),
            ("2018-09-21", 1, "0110065001", 0.0152),
            ("2018-09-22", 4, "0108775044", 0.0339),
            ("2018-09-22", 0, "0108775044", 0.0339),
            ("2018-09-22", 2, "0111565001", 0.0203),
            ("2018-09-22", 2, "0108775015", 0.0508),
        ]
        transactions = ["t_dat,customer_id,article_id,price,sales_channel_id"]
        transactions += [f"{day},{hex_id(c)},{a},{p},{1 + c % 2}" for day, c, a, p in sales]
    for name, lines in (
        ("transactions_train.csv", transactions),
        ("customers.csv", customers),
        ("articles.csv", articles),
    ):
        (root / name).write_text("\n".join(lines) + "\n")
    return root


def test_load_hm_maps_ids_orders_and_attributes(tmp_path):
    data = load_hm(write_hm(tmp_path / "hm"), block_size=300, progress=False)  # several blocks
    tx, articles, customers = data.transactions, data.articles, data.customers
    assert len(tx) == 12 and data.meta["source"] == "hm"
    assert customers.index.tolist() == [0, 1, 2, 3, 4]
    assert customers["customer_id"].tolist() == [hex_id(i) for i in range(5)]  # the mapping is kept
    assert tx["customer"].tolist()[:4] == [0, 0, 1, 2]
    assert customers["FN"].tolist() == [False, True, False, True, False]
    assert customers["age"].isna().tolist() == [False] * 4 + [True]
    # orders ~ (customer, day), numbered by day, then customer
    assert tx["order"].tolist() == [0, 0, 1, 2, 3, 5, 5, 4, 8, 6, 7, 7]
    assert tx["returned"].isna().all() and tx["size"].isna().all()
    assert tx["sales_channel_id"].tolist()[:3] == [1, 1, 2]
    assert articles.index.tolist() == [108775015, 108775044, 110065001, 111565001]
    assert (
        articles.loc[108775015, "category"] == "Vest top"
        and articles.loc[111565001, "pattern"] == "Stripe"
    )
    assert articles.loc[110065001, "brand"] == "Lingeries/Tights"
    assert articles.loc[108775015, "detail_desc"] == "Jersey top, narrow straps."
    assert articles.loc[108775044, "launch"] == pd.Timestamp("2018-09-20")
    assert articles.loc[111565001, "launch"] == pd.Timestamp("2018-09-21")
    assert articles["season"].isna().all() and articles["material"].isna().all()
    assert set(articles["price_tier"].dropna()) <= {"low", "mid", "high"}
    assert data.images is None


def test_load_hm_round_trips_through_parquet(tmp_path):
    data = load_hm(write_hm(tmp_path / "hm"), progress=False)
    back = load(save(data, tmp_path / "saved"))
    for name in ("transactions", "articles", "customers"):
        pd.testing.assert_frame_equal(getattr(data, name), getattr(back, name), check_exact=True)


def test_load_hm_reads_images_and_marks_missing_ones(tmp_path):
    from PIL import Image

    root = write_hm(tmp_path / "hm")
    folder = root / "images" / "010"
    folder.mkdir(parents=True)
    Image.new("RGB", (60, 90), (200, 10, 10)).save(folder / "0108775015.jpg")
    with pytest.warns(MissingImagesWarning, match="3 of 4 articles have no image"):
        data = load_hm(root, images=True, image_size=16, progress=False)
    assert data.images.shape == (4, 16, 16, 3)
    assert data.articles["has_image"].tolist() == [True, False, False, False]
    centre = data.images[0, 8, 8].astype(int)
    assert centre[0] > 150 and centre[1] < 60  # red, fitted on white
    assert (data.images[0, 8, 0] == 255).all()  # the 60x90 picture is letterboxed on white
    assert (data.images[1] == 0).all()


def test_load_hm_names_missing_file_and_column(tmp_path):
    root = write_hm(tmp_path / "hm")
    os.remove(root / "customers.csv")
    with pytest.raises(ValueError, match="customers.csv is missing"):
        load_hm(root, progress=False)
    with pytest.raises(ValueError, match="is not a folder"):
        load_hm(tmp_path / "nowhere", progress=False)
    root = write_hm(
        tmp_path / "hm2",
        transactions=["t_dat,customer_id,price,sales_channel_id", f"2018-09-20,{hex_id(0)},0.05,2"],
    )
    with pytest.raises(
        ValueError, match=r"transactions_train.csv lacks column\(s\) \['article_id'\]"
    ):
        load_hm(root, progress=False)
    root = write_hm(tmp_path / "hm3", articles=["product_type_name", "Vest top"])
    with pytest.raises(ValueError, match=r"articles.csv lacks column\(s\) \['article_id'\]"):
        load_hm(root, progress=False)


def test_load_hm_names_the_line_of_a_bad_row(tmp_path):
    good = f"2018-09-20,{hex_id(0)},0108775015,0.0508,2"
    rows = ["t_dat,customer_id,article_id,price,sales_channel_id"] + [good] * 20
    bad_price = list(rows)
    bad_price[15] = f"2018-09-21,{hex_id(1)},0108775015,abc,2"  # file line 16
    root = write_hm(tmp_path / "a", transactions=bad_price)
    with pytest.raises(
        ValueError, match=r"transactions_train.csv line 16, column 'price': cannot parse 'abc'"
    ):
        load_hm(root, block_size=400, progress=False)
    bad_date = list(rows)
    bad_date[3] = f"2018-13-40,{hex_id(1)},0108775015,0.05,2"
    with pytest.raises(ValueError, match=r"line 4, column 't_dat'"):
        load_hm(write_hm(tmp_path / "b", transactions=bad_date), block_size=400, progress=False)
    short = list(rows)
    short[18] = "2018-09-21,0.05,2"
    with pytest.raises(ValueError, match=r"line 19: expected 5 fields, got 3"):
        load_hm(write_hm(tmp_path / "c", transactions=short), block_size=400, progress=False)
    stranger = list(rows)
    stranger[12] = f"2018-09-21,{hex_id(77)},0108775015,0.05,2"
    with pytest.raises(
        ValueError, match=r"line 13, column 'customer_id': '[0-9a-f]{64}' is not in customers.csv"
    ):
        load_hm(write_hm(tmp_path / "d", transactions=stranger), block_size=400, progress=False)
    unknown_article = list(rows)
    unknown_article[5] = f"2018-09-21,{hex_id(1)},0999999001,0.05,2"
    with pytest.raises(
        ValueError, match=r"1 row\(s\) refer to 1 article id\(s\) not in the articles table"
    ):
        load_hm(write_hm(tmp_path / "e", transactions=unknown_article), progress=False)
    bad_age = [
        "customer_id,FN,Active,club_member_status,fashion_news_frequency,age,postal_code",
        f"{hex_id(0)},,,ACTIVE,NONE,31,x",
        f"{hex_id(1)},,,ACTIVE,NONE,old,x",
    ]
    with pytest.raises(ValueError, match=r"customers.csv line 3, column 'age': cannot parse 'old'"):
        load_hm(write_hm(tmp_path / "f", customers=bad_age), progress=False)
