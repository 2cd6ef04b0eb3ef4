"""Overlapping effort between partners, and concentration / fragmentation metrics.

Implements the "Duplication and fragmentation" section of ``docs/metrics.md``
(tables ``duplication_pairs`` of kind ``overlapping_effort`` and
``duplication_metrics``). Pure pandas / numpy / scipy.

Overlapping effort (:func:`overlapping_pairs`)
    Only CD activities (``activities.is_cd``) with both ``start_date`` and
    ``end_date`` known (they are already "actual, else planned"); an activity
    without dates cannot have a date overlap and is not scored. Candidates come
    from BLOCKING on (recipient country, CD sector code): two activities are
    compared only when they share a country and a CD sector (vocabulary 1).
    Within a block the activities are sorted by start date and swept: an
    activity is compared with the following ones whose start is not after its
    end (pairs with disjoint dates have date overlap 0 and cannot score), and
    at most with its ``window`` (:data:`HUGE_BLOCK_WINDOW`) nearest followers
    by start date (sorted neighbourhood) in blocks of more than ``huge_block``
    (:data:`HUGE_BLOCK`) activities. With the defaults every block is windowed
    (a block of at most ``window`` activities is never cut), so the number of
    comparisons per activity is bounded and the search is linear in the number
    of activities. This is a documented approximation: in an extremely dense
    block (more than ``window`` activities starting between an activity's
    start and end) a pair further apart in the start-date order is not found;
    ``PairSearchStats.window_hits`` counts the activities concerned.

    Memory is bounded: candidates are generated in batches of about
    ``chunk_pairs`` pairs; each batch is scored (different partners, date
    overlap, sector overlap, then title similarity for the pairs still above
    the threshold, TF-IDF rows being built only for those pairs' activities)
    and only the pairs with score ≥ ``threshold`` are kept. Pairs whose date
    overlap is below the threshold are already dropped during the sweep
    (score ≤ date overlap). Pairs found in several blocks are kept once (with
    the alphabetically first country). The result does not depend on
    ``chunk_pairs``.

    score = sector_overlap × date_overlap (× title_similarity when
    ``use_text``), where
    - sector_overlap = Σ min(share) ÷ Σ max(share) over the union of the two
      activities' DAC 5-digit sector codes (all vocabulary-1 sectors, CD or
      not; a missing share counts as an equal split);
    - date_overlap = |intersection| ÷ |union| of the [start, end] intervals,
      counted in whole days, both ends inclusive;
    - title_similarity = cosine of TF-IDF vectors of character 3- to 5-grams of
      "title description" (lowercased, whitespace collapsed, accents kept,
      description cut at :data:`TEXT_MAX_CHARS` characters). n-grams are hashed
      into 2**:data:`HASH_BITS` buckets (rare collisions are accepted); tf is
      sublinear (1 + ln tf), idf = ln((1 + N) / (1 + df)) + 1 over the N
      scored CD activities. Cosine is computed only for candidate pairs, as
      row-wise dot products of L2-normalised sparse rows.
    A pair is kept when score ≥ ``threshold``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from assets.harmonise.schema import table_frame

KIND = "overlapping_effort"
HUGE_BLOCK_WINDOW = 100
#: Blocks larger than this are windowed; equal to the window, so every block is
#: effectively windowed (a block of at most ``window`` rows is never cut).
HUGE_BLOCK = HUGE_BLOCK_WINDOW
CHUNK_PAIRS = 2_000_000
HASH_BITS = 20
TEXT_MAX_CHARS = 1000
NGRAM_SIZES = (3, 4, 5)
_TEXT_CHUNK = 5_000
_PAIR_CHUNK = 50_000


@dataclass(frozen=True)
class OverlapSettings:
    threshold: float = 0.3  # minimum score for an overlapping_effort pair
    use_text: bool = True  # multiply by title/description similarity
    method_version: str = "1"
    huge_block: int = HUGE_BLOCK  # blocks larger than this are windowed
    window: int = HUGE_BLOCK_WINDOW  # followers by start date compared in a huge block
    chunk_pairs: int = CHUNK_PAIRS  # candidate pairs scored at a time (bounds memory)


@dataclass
class PairSearchStats:
    """Counters of one :func:`overlapping_pairs` run (filled when passed in)."""

    candidates: int = 0  # pairs compared (same block, dates touching, within the window)
    scored: int = 0  # candidates of different partners whose score was computed
    window_hits: int = 0  # activities with a follower left out by the window
    batches: int = 0  # candidate batches processed
    pairs: int = 0  # pairs returned


# --------------------------------------------------------------------------- inputs


def _truthy(series: pd.Series) -> np.ndarray:
    return series.astype("boolean").fillna(False).to_numpy(dtype=bool)


def _days(series: pd.Series) -> np.ndarray:
    """Dates (date objects, strings or datetimes) -> float days since epoch, NaN if missing."""
    values = pd.to_datetime(series, errors="coerce")
    out = (values - pd.Timestamp("1970-01-01")).dt.days.to_numpy(dtype="float64", na_value=np.nan)
    return np.asarray(out, dtype="float64")


def _vocab1_sectors(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """activity_id, code, share (equal split where missing), is_cd_sector for vocabulary 1."""
    sectors = tables["activity_sectors"]
    s = sectors.loc[sectors["vocabulary"].astype("string") == "1"]
    out = pd.DataFrame(
        {
            "activity_id": s["activity_id"].astype(str).to_numpy(),
            "code": s["code"].astype(str).to_numpy(),
            "share": pd.to_numeric(s["share"], errors="coerce").astype("float64").to_numpy(),
            "is_cd_sector": _truthy(s["is_cd_sector"]),
        }
    )
    if out["share"].isna().any():
        equal = 1.0 / out.groupby("activity_id")["code"].transform("size")
        out["share"] = out["share"].fillna(equal)
    return out


def _countries(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    c = tables["activity_countries"]
    out = pd.DataFrame(
        {
            "activity_id": c["activity_id"].astype(str).to_numpy(),
            "country_code": c["country_code"].astype(str).to_numpy(),
            "share": pd.to_numeric(c["share"], errors="coerce").astype("float64").to_numpy(),
        }
    )
    if out["share"].isna().any():
        equal = 1.0 / out.groupby("activity_id")["country_code"].transform("size")
        out["share"] = out["share"].fillna(equal)
    return out


# --------------------------------------------------------------------------- candidates


def _sweep_batches(
    block: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    min_date_overlap: float = 0.0,
    huge_block: int = HUGE_BLOCK,
    window: int = HUGE_BLOCK_WINDOW,
    chunk_pairs: int = CHUNK_PAIRS,
    hit: np.ndarray | None = None,
    stats: PairSearchStats | None = None,
) -> Iterator[np.ndarray]:
    """Batches of row pairs (i, j), i < j, in the same block with start[j] <= end[i].

    Pairs whose date overlap (intersection ÷ union, inclusive days) is below
    ``min_date_overlap`` are dropped on the fly (the score cannot exceed the
    date overlap).

    Rows must be sorted by (block, start). The rows are taken as anchors
    ``chunk_pairs // window`` at a time; for each group pairs are generated by
    offsets k = 1, 2, ...; a row leaves the active set as soon as its k-th
    follower is in another block or starts after its end (all later followers
    then do too), so the cost is O(rows + pairs). Rows in blocks larger than
    ``huge_block`` stop after ``window`` followers; those that still had a
    candidate follower are flagged in ``hit`` (by row). A batch is yielded as
    soon as it holds ``chunk_pairs`` pairs, so a batch holds fewer than
    2 × ``chunk_pairs`` pairs.
    """
    n = len(block)
    if n < 2:
        return
    chunk_pairs = max(1, chunk_pairs)
    _, inverse, counts = np.unique(block, return_inverse=True, return_counts=True)
    limit = np.where(counts[inverse] > huge_block, window, n)
    del inverse
    anchors_per_group = max(1, chunk_pairs // max(1, min(window, n)))
    pending: list[np.ndarray] = []
    n_pending = 0
    for lo in range(0, n, anchors_per_group):
        active = np.arange(lo, min(lo + anchors_per_group, n), dtype=np.int64)
        k = 1
        while active.size:
            active = active[active + k < n]
            follower = active + k
            ok = (block[follower] == block[active]) & (start[follower] <= end[active])
            active, follower = active[ok], follower[ok]
            over = k > limit[active]
            if over.any():
                if hit is not None:
                    hit[active[over]] = True
                active, follower = active[~over], follower[~over]
            if not active.size:
                break
            if stats is not None:
                stats.candidates += int(active.size)
            inter = np.minimum(end[active], end[follower]) - start[follower] + 1
            union = np.maximum(end[active], end[follower]) - start[active] + 1
            good = inter >= min_date_overlap * union
            if good.any():
                pending.append(np.column_stack([active[good], follower[good]]))
                n_pending += int(good.sum())
            if n_pending >= chunk_pairs:
                yield np.concatenate(pending)
                pending, n_pending = [], 0
            k += 1
    if pending:
        yield np.concatenate(pending)


# --------------------------------------------------------------------------- text


def _hash_ngrams(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(document index, hashed bucket) of every character n-gram, vectorised over the corpus."""
    joined = "\x00".join(texts) + "\x00"
    codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    doc_of = np.cumsum(codes == 0) - (codes == 0)
    docs: list[np.ndarray] = []
    buckets: list[np.ndarray] = []
    prime = np.uint64(1_000_003)
    mix = np.uint64(0x9E3779B97F4A7C15)
    shift = np.uint64(64 - HASH_BITS)
    with np.errstate(over="ignore"):
        for size in NGRAM_SIZES:
            m = len(codes) - size + 1
            if m <= 0:
                continue
            h = np.full(m, np.uint64(size))
            has_sep = np.zeros(m, dtype=bool)
            for offset in range(size):
                part = codes[offset : offset + m]
                h = h * prime + part
                has_sep |= part == 0
            keep = ~has_sep
            docs.append(doc_of[:m][keep])
            buckets.append(((h[keep] * mix) >> shift).astype(np.int64))
    if not docs:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    return np.concatenate(docs).astype(np.int64), np.concatenate(buckets)


def _clean_texts(titles: pd.Series, descriptions: pd.Series) -> list[str]:
    text = (
        titles.astype("string").fillna("")
        + " "
        + descriptions.astype("string").fillna("").str.slice(0, TEXT_MAX_CHARS)
    )
    text = text.str.lower().str.replace(r"\s+", " ", regex=True).str.strip()
    return [str(t) for t in text.tolist()]


def _count_matrix(texts: list[str]) -> sp.csr_matrix:
    doc, bucket = _hash_ngrams(texts)
    data = np.ones(len(doc), dtype=np.float32)
    matrix = sp.csr_matrix((data, (doc, bucket)), shape=(len(texts), 1 << HASH_BITS))
    matrix.sum_duplicates()
    return matrix


def _idf(texts: list[str]) -> np.ndarray:
    """ln((1 + N) / (1 + df)) + 1 per hashed bucket, df counted in chunks (bounded memory)."""
    df = np.zeros(1 << HASH_BITS, dtype=np.float64)
    for begin in range(0, len(texts), _TEXT_CHUNK):
        counts = _count_matrix(texts[begin : begin + _TEXT_CHUNK])
        df += np.bincount(counts.indices, minlength=1 << HASH_BITS)
    return np.asarray(np.log((1.0 + len(texts)) / (1.0 + df)) + 1.0)


def _weighted(matrix: sp.csr_matrix, idf: np.ndarray) -> sp.csr_matrix:
    """Counts -> sublinear tf × idf, L2-normalised rows, in place (no copy of the matrix)."""
    matrix.data = ((1.0 + np.log(matrix.data)) * idf[matrix.indices]).astype(np.float32)
    row_of = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    norms = np.sqrt(np.bincount(row_of, weights=matrix.data**2, minlength=matrix.shape[0]))
    norms[norms == 0] = 1.0
    matrix.data /= norms[row_of].astype(np.float32)
    return matrix


def _tfidf_rows(texts: list[str], docs: np.ndarray, idf: np.ndarray) -> sp.csr_matrix:
    """L2-normalised TF-IDF rows of ``texts[docs]`` (row i = ``texts[docs[i]]``)."""
    kept = [
        _count_matrix([texts[i] for i in docs[begin : begin + _TEXT_CHUNK]])
        for begin in range(0, len(docs), _TEXT_CHUNK)
    ]
    if not kept:
        return sp.csr_matrix((0, 1 << HASH_BITS), dtype=np.float32)
    matrix = sp.vstack(kept, format="csr") if len(kept) > 1 else kept[0]
    return _weighted(matrix, idf)


def tfidf_matrix(
    texts: list[str], needed: np.ndarray | None = None
) -> tuple[sp.csr_matrix, np.ndarray]:
    """L2-normalised TF-IDF rows (char 3-5-grams, hashed) for ``texts[needed]``.

    The idf is computed over all ``texts`` in chunks (bounded memory); rows are
    kept only for the ``needed`` documents, which must be sorted and unique
    (row i of the matrix is ``texts[needed[i]]``). Returns (matrix, needed).
    """
    n = len(texts)
    needed = np.arange(n) if needed is None else np.asarray(needed, dtype=np.int64)
    return _tfidf_rows(texts, needed, _idf(texts)), needed


def rowwise_cosine(matrix: sp.csr_matrix, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dot products of rows a[i] and b[i] of an L2-normalised sparse matrix."""
    out = np.empty(len(a), dtype=np.float64)
    for begin in range(0, len(a), _PAIR_CHUNK):
        end = begin + _PAIR_CHUNK
        prod = matrix[a[begin:end]].multiply(matrix[b[begin:end]])
        out[begin:end] = np.asarray(prod.sum(axis=1)).ravel()
    return np.clip(out, 0.0, 1.0)


def text_similarity(text_a: str, text_b: str, corpus: list[str] | None = None) -> float:
    """Title similarity of two texts, idf over ``corpus`` (default: the two texts)."""
    texts = _clean_texts(pd.Series([text_a, text_b]), pd.Series(["", ""]))
    extra = _clean_texts(pd.Series(corpus or []), pd.Series([""] * len(corpus or [])))
    matrix, _ = tfidf_matrix(texts + extra, np.array([0, 1]))
    return float(rowwise_cosine(matrix, np.array([0]), np.array([1]))[0])


# --------------------------------------------------------------------------- pairs

_PAD_SECTORS = 8


def _pad_shares(shares: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(codes, values, wide): each row's (code, share) list padded to a small dense width.

    Rows with more than :data:`_PAD_SECTORS` codes are flagged ``wide`` (their
    padded lists are left empty).
    """
    counts = np.diff(shares.indptr)
    n = shares.shape[0]
    width = max(min(int(counts.max()) if len(counts) else 0, _PAD_SECTORS), 1)
    wide = counts > _PAD_SECTORS
    codes = np.full((n, width), -1, dtype=np.int32)
    values = np.zeros((n, width), dtype=np.float64)
    narrow = np.repeat(~wide, counts)
    rows = np.repeat(np.arange(n), counts)[narrow]
    cols = (np.arange(len(shares.indices)) - np.repeat(shares.indptr[:-1], counts))[narrow]
    codes[rows, cols] = shares.indices[narrow]
    values[rows, cols] = shares.data[narrow]
    return codes, values, wide


def _pair_sum_min(
    shares: sp.csr_matrix,
    a: np.ndarray,
    b: np.ndarray,
    padded: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Σ_code min(share_a, share_b) for each pair (rows a[i], b[i] of ``shares``).

    Activities rarely have more than a few sectors: their (code, share) lists
    are padded to a small dense width (:func:`_pad_shares`, computed once and
    passed as ``padded`` when called repeatedly) and compared pairwise, which
    is much faster than sparse row indexing; pairs with a wider row fall back
    to sparse minimum.
    """
    codes, values, wide = _pad_shares(shares) if padded is None else padded
    out = np.zeros(len(a), dtype=np.float64)
    for begin in range(0, len(a), _PAIR_CHUNK * 20):
        sl = slice(begin, begin + _PAIR_CHUNK * 20)
        ca, cb = codes[a[sl]], codes[b[sl]]
        va, vb = values[a[sl]], values[b[sl]]
        acc = np.zeros(len(ca), dtype=np.float64)
        for i in range(ca.shape[1]):
            for j in range(cb.shape[1]):
                match = (ca[:, i] == cb[:, j]) & (ca[:, i] >= 0)
                acc += np.where(match, np.minimum(va[:, i], vb[:, j]), 0.0)
        out[sl] = acc
    sparse = np.flatnonzero(wide[a] | wide[b])
    for begin in range(0, len(sparse), _PAIR_CHUNK):
        sel = sparse[begin : begin + _PAIR_CHUNK]
        out[sel] = np.asarray(shares[a[sel]].minimum(shares[b[sel]]).sum(axis=1)).ravel()
    return out


def _pair_id(a: str, b: str) -> str:
    key = "\x1f".join([KIND, *sorted((a, b))])
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def _month(days: np.ndarray) -> np.ndarray:
    return np.asarray(
        (np.datetime64("1970-01-01") + days.astype("int64").astype("timedelta64[D]"))
        .astype("datetime64[M]")
        .astype(str)
    )


def overlapping_pairs(
    tables: Mapping[str, pd.DataFrame],
    settings: OverlapSettings = OverlapSettings(),
    stats: PairSearchStats | None = None,
) -> pd.DataFrame:
    """``duplication_pairs`` rows of kind ``overlapping_effort`` (see the module docstring).

    ``stats``, when given, is filled with the counters of the search.
    """
    acts = tables["activities"]
    acts = acts.loc[_truthy(acts["is_cd"])]
    start = _days(acts["start_date"])
    end = _days(acts["end_date"])
    dated = ~np.isnan(start) & ~np.isnan(end) & (end >= start)
    acts = acts.loc[dated]
    start, end = start[dated], end[dated]
    ids = acts["activity_id"].astype(str).to_numpy()
    n_acts = len(ids)
    empty = table_frame("duplication_pairs", [])
    if n_acts < 2:
        return empty
    index = pd.Index(ids)
    partner = pd.factorize(acts["reporting_org_ref"].astype("string").fillna(""))[0]

    sectors = _vocab1_sectors(tables)
    sectors["act"] = index.get_indexer(sectors["activity_id"])
    sectors = sectors.loc[sectors["act"] >= 0]
    countries = _countries(tables)
    countries["act"] = index.get_indexer(countries["activity_id"])
    countries = countries.loc[countries["act"] >= 0, ["act", "country_code"]]

    blocks = countries.merge(
        sectors.loc[sectors["is_cd_sector"], ["act", "code"]], on="act"
    ).drop_duplicates()
    if blocks.empty:
        return empty
    blocks["block"] = pd.factorize(
        blocks["country_code"].astype(str) + "|" + blocks["code"].astype(str)
    )[0]
    act_b = blocks["act"].to_numpy(dtype=np.int64)
    blk = blocks["block"].to_numpy(dtype=np.int64)
    order = np.lexsort((start[act_b], blk))
    act_b, blk = act_b[order], blk[order]
    # country of each block row as its rank in alphabetical order
    country_codes, country_b = np.unique(
        blocks["country_code"].to_numpy()[order], return_inverse=True
    )
    del blocks, order

    # sector overlap: weighted Jaccard over vocabulary-1 shares
    codes = pd.factorize(sectors["code"])[0]
    shares = sp.csr_matrix(
        (sectors["share"].to_numpy(dtype=np.float64), (sectors["act"].to_numpy(), codes)),
        shape=(n_acts, max(codes.max() + 1, 1) if len(codes) else 1),
    )
    shares.sum_duplicates()
    totals = np.asarray(shares.sum(axis=1)).ravel()
    padded = _pad_shares(shares)

    texts: list[str] = []
    idf: np.ndarray | None = None
    if settings.use_text:
        texts = _clean_texts(
            acts["title"] if "title" in acts else pd.Series([""] * n_acts),
            acts["description"] if "description" in acts else pd.Series([""] * n_acts),
        )

    hit = np.zeros(len(act_b), dtype=bool)
    stats = stats if stats is not None else PairSearchStats()
    kept: list[tuple[np.ndarray, ...]] = []
    for rows in _sweep_batches(
        blk,
        start[act_b],
        end[act_b],
        settings.threshold,
        settings.huge_block,
        settings.window,
        settings.chunk_pairs,
        hit,
        stats,
    ):
        stats.batches += 1
        a, b = act_b[rows[:, 0]], act_b[rows[:, 1]]
        pair_country = country_b[rows[:, 0]]
        del rows
        different = partner[a] != partner[b]
        a, b, pair_country = a[different], b[different], pair_country[different]
        stats.scored += len(a)
        # date overlap (inclusive days)
        inter = np.minimum(end[a], end[b]) - np.maximum(start[a], start[b]) + 1
        union = (end[a] - start[a] + 1) + (end[b] - start[b] + 1) - inter
        date_overlap = inter / union
        sum_min = _pair_sum_min(shares, a, b, padded)
        denom = totals[a] + totals[b] - sum_min
        sector_overlap = np.divide(sum_min, denom, out=np.zeros_like(sum_min), where=denom > 0)
        score = sector_overlap * date_overlap
        keep = score >= settings.threshold  # title similarity <= 1 can only lower it
        a, b, pair_country = a[keep], b[keep], pair_country[keep]
        sector_overlap, date_overlap, score = sector_overlap[keep], date_overlap[keep], score[keep]
        title_sim = np.full(len(a), np.nan)
        if settings.use_text and len(a):
            if idf is None:
                idf = _idf(texts)
            docs = np.unique(np.concatenate([a, b]))
            matrix = _tfidf_rows(texts, docs, idf)
            title_sim = rowwise_cosine(matrix, np.searchsorted(docs, a), np.searchsorted(docs, b))
            del matrix
            score = score * title_sim
            keep = score >= settings.threshold
            a, b, pair_country = a[keep], b[keep], pair_country[keep]
            sector_overlap, date_overlap = sector_overlap[keep], date_overlap[keep]
            score, title_sim = score[keep], title_sim[keep]
        if len(a):
            kept.append((a, b, pair_country, sector_overlap, date_overlap, score, title_sim))
    stats.window_hits = int(np.unique(act_b[hit]).size)
    if not kept:
        return empty
    a, b, pair_country, sector_overlap, date_overlap, score, title_sim = (
        np.concatenate(parts) for parts in zip(*kept, strict=True)
    )
    del kept
    # dedupe across blocks (a pair sharing several sectors, or several countries:
    # the first country in alphabetical order is kept); the scores do not depend on
    # the block
    key = np.minimum(a, b) * np.int64(n_acts) + np.maximum(a, b)
    order = np.lexsort((pair_country, key))
    key = key[order]
    first = np.ones(len(key), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    pick = order[first]
    a, b = key[first] // n_acts, key[first] % n_acts
    pair_country, sector_overlap = pair_country[pick], sector_overlap[pick]
    date_overlap, score, title_sim = date_overlap[pick], score[pick], title_sim[pick]
    del key, order, first, pick
    stats.pairs = len(a)

    # evidence: shared sector codes, common date range, title similarity
    shared = sp.csr_matrix(shares[a].minimum(shares[b]))
    shared.eliminate_zeros()
    code_names = np.asarray(pd.factorize(sectors["code"])[1], dtype=object)
    coo = shared.tocoo()
    shared_codes = (
        pd.DataFrame({"row": coo.row, "code": code_names[coo.col]})
        .sort_values(["row", "code"])
        .groupby("row")["code"]
        .agg(" ".join)
        .reindex(range(len(a)), fill_value="")
    )
    date_from = _month(np.maximum(start[a], start[b]))
    date_to = _month(np.minimum(end[a], end[b]))
    evidence = "sectors " + shared_codes.to_numpy(dtype=object) + "; dates " + date_from
    evidence = evidence + ".." + date_to
    if settings.use_text:
        evidence = evidence + np.char.mod("; title similarity %.2f", title_sim).astype(object)

    id_a, id_b = ids[a], ids[b]
    swap = id_a > id_b
    id_a, id_b = np.where(swap, id_b, id_a), np.where(swap, id_a, id_b)
    out = pd.DataFrame(
        {
            "pair_id": [_pair_id(x, y) for x, y in zip(id_a, id_b, strict=True)],
            "activity_id_a": id_a,
            "activity_id_b": id_b,
            "country_code": country_codes[pair_country],
            "kind": KIND,
            "score": score,
            "sector_overlap": sector_overlap,
            "date_overlap": date_overlap,
            "title_similarity": title_sim,
            "evidence": evidence,
        }
    ).sort_values(["activity_id_a", "activity_id_b"])
    return table_frame("duplication_pairs", out)


def overlap_clusters(pairs: pd.DataFrame) -> dict[str, int]:
    """activity_id -> cluster number: connected components of overlapping activities.

    Only ``overlapping_effort`` pairs are used. Clusters are numbered from 0 in
    the order of their smallest activity_id; activities in no pair are absent.
    """
    p = pairs.loc[pairs["kind"].astype(str) == KIND] if "kind" in pairs else pairs
    if p.empty:
        return {}
    ids = np.unique(
        np.concatenate([p["activity_id_a"].astype(str), p["activity_id_b"].astype(str)])
    )
    index = pd.Index(ids)
    a = index.get_indexer(p["activity_id_a"].astype(str))
    b = index.get_indexer(p["activity_id_b"].astype(str))
    graph = sp.coo_matrix((np.ones(len(a)), (a, b)), shape=(len(ids), len(ids)))
    _, labels = connected_components(graph, directed=False)
    # renumber by first appearance in sorted id order (ids are sorted)
    _, first = np.unique(labels, return_index=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    return {str(i): int(rank[label]) for i, label in zip(ids, labels, strict=True)}


# --------------------------------------------------------------------------- metrics


def _membership(tables: Mapping[str, pd.DataFrame], cd_ids: pd.Index) -> pd.DataFrame:
    """country_code, sector_code, priority_id, activity_id, weight of every CD activity.

    Sector rows: weight = country share × CD sector share (vocabulary 1).
    Priority rows (from ``alignment_links``): weight = country share ÷ number of
    priorities the activity is linked to in that country (equal split, so a
    dollar is never counted twice across priorities of one country).
    """
    countries = _countries(tables)
    countries = countries.loc[countries["activity_id"].isin(cd_ids)]
    sectors = _vocab1_sectors(tables)
    sectors = sectors.loc[sectors["is_cd_sector"] & sectors["activity_id"].isin(cd_ids)]
    by_sector = countries.merge(
        sectors[["activity_id", "code", "share"]], on="activity_id", suffixes=("_c", "_s")
    )
    by_sector = pd.DataFrame(
        {
            "country_code": by_sector["country_code"],
            "sector_code": by_sector["code"],
            "priority_id": "",
            "activity_id": by_sector["activity_id"],
            "weight": by_sector["share_c"] * by_sector["share_s"],
        }
    )
    frames = [by_sector]
    links = tables.get("alignment_links")
    if links is not None and not links.empty and "priority_id" in links:
        lk = pd.DataFrame(
            {
                "activity_id": links["activity_id"].astype(str).to_numpy(),
                "country_code": links["country_code"].astype(str).to_numpy(),
                "priority_id": links["priority_id"].astype("string").to_numpy(),
            }
        ).dropna()
        lk = lk.loc[lk["activity_id"].isin(cd_ids) & (lk["priority_id"] != "")]
        lk = lk.drop_duplicates(["activity_id", "country_code", "priority_id"])
        lk["n"] = lk.groupby(["activity_id", "country_code"])["priority_id"].transform("size")
        lk = lk.merge(countries, on=["activity_id", "country_code"])
        frames.append(
            pd.DataFrame(
                {
                    "country_code": lk["country_code"],
                    "sector_code": "",
                    "priority_id": lk["priority_id"].astype(str),
                    "activity_id": lk["activity_id"],
                    "weight": lk["share"] / lk["n"],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _fragmentation(cell_partner: pd.DataFrame, cell: list[str], ref: list[str]) -> pd.Series:
    """OECD fragmentation ratio per cell from positive partner amounts ``usd``.

    Relationship = a partner with positive disbursement in the cell. It is
    significant if (a) its share of the cell's aid ≥ its share of the reference
    total (the same sector or priority and year, all countries in the data), or
    (b) it is among the largest partners that together give ≥ 90% of the cell's
    aid (partners are added by decreasing amount until 90% is reached; the one
    crossing 90% is included).
    """
    cp = cell_partner.loc[cell_partner["usd"] > 0].copy()
    if cp.empty:
        return pd.Series(dtype="float64")
    cp["cell_total"] = cp.groupby(cell)["usd"].transform("sum")
    partner_ref = cp.groupby([*ref, "reporting_org_ref"])["usd"].transform("sum")
    ref_total = cp.groupby(ref)["usd"].transform("sum")
    share_cell = cp["usd"] / cp["cell_total"]
    share_ref = partner_ref / ref_total
    cp = cp.assign(share_cell=share_cell, share_ref=share_ref)
    cp = cp.sort_values(
        [*cell, "usd", "reporting_org_ref"], ascending=[True] * len(cell) + [False, True]
    )
    before = cp.groupby(cell)["share_cell"].cumsum() - cp["share_cell"]
    significant = (cp["share_cell"] >= cp["share_ref"] - 1e-12) | (before < 0.9 - 1e-12)
    cp["non_significant"] = ~significant
    return cp.groupby(cell)["non_significant"].mean()


def duplication_metrics(
    tables: Mapping[str, pd.DataFrame], pairs: pd.DataFrame, method_version: str = "1"
) -> pd.DataFrame:
    """``duplication_metrics`` rows per country × CD sector (or priority) × year.

    Cell membership: a CD activity is in (country, sector, year) when it has
    that recipient country and CD sector (vocabulary 1) and either has a
    counted CD disbursement (transaction type 3 or 4, ``counts_toward_totals``)
    dated in the year or its [start_date, end_date] covers part of the year.
    Priority cells (``alignment_links``, when given) work the same way with the
    activity's linked priorities in that country instead of sectors.

    - ``cd_disbursement_usd``: Σ value_usd × country share × sector share
      (priority cells: × 1 / number of linked priorities), by transaction year.
    - ``hhi`` = Σ sᵢ² over partners' (reporting_org_ref) shares of the cell's
      disbursement, partners with a negative net amount counted as 0;
      ``effective_partners`` = 1 / hhi. Empty when the cell's disbursement is
      not positive.
    - ``fragmentation_ratio``: the OECD rule (significant if the partner's
      share of the country's aid ≥ its share of total aid to all countries, or
      among the largest partners giving ≥ 90%) applied within each cell: the
      "country's aid" is the cell's disbursement and "total aid to all
      countries" is the disbursement in the same sector (or priority) and year
      across all countries in the data. Empty when no positive disbursement.
    - ``n_overlap_pairs``: ``overlapping_effort`` pairs of that country whose
      two activities are both members of the cell.
    - ``overlap_value_share``: disbursement of the cell's activities that are
      in at least one of those pairs ÷ the cell's disbursement (empty when the
      disbursement is not positive).
    """
    acts = tables["activities"]
    acts = acts.loc[_truthy(acts["is_cd"])]
    cd_ids = pd.Index(acts["activity_id"].astype(str).unique())
    partner_of = pd.Series(
        acts["reporting_org_ref"].astype("string").fillna("").to_numpy(),
        index=acts["activity_id"].astype(str).to_numpy(),
    )
    member = _membership(tables, cd_ids)
    cell = ["country_code", "sector_code", "priority_id", "year"]
    if member.empty:
        return table_frame("duplication_metrics", [])

    # counted CD disbursement per activity and year
    tx = tables["transactions"]
    tx = tx.loc[
        tx["transaction_type"].astype("string").isin(["3", "4"])
        & _truthy(tx["counts_toward_totals"])
        & tx["activity_id"].astype(str).isin(cd_ids)
    ]
    tx = pd.DataFrame(
        {
            "activity_id": tx["activity_id"].astype(str).to_numpy(),
            "year": pd.to_datetime(tx["transaction_date"], errors="coerce").dt.year.to_numpy(),
            "usd": pd.to_numeric(tx["value_usd"], errors="coerce").astype("float64").to_numpy(),
        }
    ).dropna()
    tx["year"] = tx["year"].astype("int64")
    act_year_usd = tx.groupby(["activity_id", "year"], as_index=False)["usd"].sum()

    # activity-years: disbursement years ∪ years covered by the dates
    start_year = pd.to_datetime(acts["start_date"], errors="coerce").dt.year
    end_year = pd.to_datetime(acts["end_date"], errors="coerce").dt.year
    spans = pd.DataFrame(
        {"activity_id": acts["activity_id"].astype(str).to_numpy(), "s": start_year, "e": end_year}
    ).dropna()
    spans = spans.loc[spans["e"] >= spans["s"]]
    lengths = (spans["e"] - spans["s"] + 1).astype("int64").to_numpy()
    covered = pd.DataFrame(
        {
            "activity_id": np.repeat(spans["activity_id"].to_numpy(), lengths),
            "year": np.repeat(spans["s"].astype("int64").to_numpy(), lengths)
            + (np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)),
        }
    )
    act_years = pd.concat([covered, act_year_usd[["activity_id", "year"]]]).drop_duplicates()
    act_years = act_years.merge(act_year_usd, on=["activity_id", "year"], how="left")
    act_years["usd"] = act_years["usd"].fillna(0.0)

    rows = member.merge(act_years, on="activity_id")
    rows["usd"] = rows["usd"] * rows["weight"]
    rows["reporting_org_ref"] = partner_of.reindex(rows["activity_id"]).to_numpy()

    # pairs whose two activities are both in the cell
    p = pairs.loc[pairs["kind"].astype(str) == KIND] if len(pairs) else pairs
    in_pair = pd.Series(False, index=rows.index)
    n_pairs = pd.Series(0, index=pd.MultiIndex.from_tuples([], names=cell), dtype="int64")
    if len(p):
        key = ["country_code", "sector_code", "priority_id", "year"]
        pa = pd.DataFrame(
            {
                "country_code": p["country_code"].astype(str).to_numpy(),
                "a": p["activity_id_a"].astype(str).to_numpy(),
                "b": p["activity_id_b"].astype(str).to_numpy(),
            }
        )
        cells = rows[[*key, "activity_id"]]
        both = pa.merge(cells.rename(columns={"activity_id": "a"}), on=["country_code", "a"])
        both = both.merge(cells.rename(columns={"activity_id": "b"}), on=[*key, "b"])
        n_pairs = both.groupby(key).size()
        flagged = pd.concat(
            [
                both[[*key, "a"]].rename(columns={"a": "activity_id"}),
                both[[*key, "b"]].rename(columns={"b": "activity_id"}),
            ]
        ).drop_duplicates()
        flagged["flag"] = True
        in_pair = (
            rows[[*key, "activity_id"]]
            .merge(flagged, on=[*key, "activity_id"], how="left")["flag"]
            .fillna(False)
            .astype(bool)
        )
        in_pair.index = rows.index
    rows["overlap_usd"] = rows["usd"].where(in_pair.to_numpy(), 0.0)

    grouped = rows.groupby(cell)
    out = pd.DataFrame(
        {
            "n_partners": grouped["reporting_org_ref"].nunique(),
            "n_activities": grouped["activity_id"].nunique(),
            "cd_disbursement_usd": grouped["usd"].sum(),
            "overlap_usd": grouped["overlap_usd"].sum(),
        }
    )
    cell_partner = rows.groupby([*cell, "reporting_org_ref"], as_index=False)["usd"].sum()
    positive = cell_partner.assign(usd=cell_partner["usd"].clip(lower=0.0))
    positive["share"] = positive["usd"] / positive.groupby(cell)["usd"].transform("sum")
    hhi = (positive["share"] ** 2).groupby([positive[c] for c in cell]).sum(min_count=1)
    out["hhi"] = hhi.reindex(out.index)
    has_money = out["cd_disbursement_usd"] > 0
    out.loc[~has_money, "hhi"] = np.nan
    out["effective_partners"] = np.where(out["hhi"] > 0, 1.0 / out["hhi"], np.nan)
    ref = ["sector_code", "priority_id", "year"]
    out["fragmentation_ratio"] = _fragmentation(cell_partner, cell, ref).reindex(out.index)
    out.loc[~has_money, "fragmentation_ratio"] = np.nan
    out["n_overlap_pairs"] = n_pairs.reindex(out.index, fill_value=0).astype("int64")
    out["overlap_value_share"] = np.where(
        has_money, (out["overlap_usd"] / out["cd_disbursement_usd"]).clip(0, 1), np.nan
    )
    out = out.drop(columns="overlap_usd").reset_index()
    out["method_version"] = method_version
    out = out.sort_values(["country_code", "priority_id", "sector_code", "year"])
    out = out.replace({"sector_code": {"": None}, "priority_id": {"": None}})
    return table_frame("duplication_metrics", out)
