"""Title and description similarity of activities: hashed character n-gram TF-IDF.

The one part of the metrics that stays in Python (numpy, scipy): the hashing of
n-grams, the float32 weights and the cosine cannot be written in SQL so that every
score is the same to the last bit. It never holds a whole table: the document
frequencies are counted over the texts in chunks of :data:`TEXT_CHUNK`
(:class:`DocumentFrequencies`), and the similarity of candidate pairs is computed a
batch of pairs at a time, with the rows of only that batch's activities
(:func:`tfidf_rows`, :func:`rowwise_cosine`; :mod:`assets.metrics.duplication`
fetches both from DuckDB).

title_similarity = cosine of TF-IDF vectors of character 3- to 5-grams of
"title description" (lowercased, whitespace collapsed, accents kept, description
cut at :data:`TEXT_MAX_CHARS` characters). n-grams are hashed into
2**:data:`HASH_BITS` buckets (rare collisions are accepted); tf is sublinear
(1 + ln tf), idf = ln((1 + N) / (1 + df)) + 1 over the N scored CD activities.
Cosine is computed only for candidate pairs, as row-wise dot products of
L2-normalised sparse rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

HASH_BITS = 20
TEXT_MAX_CHARS = 1000
NGRAM_SIZES = (3, 4, 5)
#: Texts hashed at a time (document frequencies, rows): a chunk's n-grams are a few
#: arrays of its characters' length.
TEXT_CHUNK = 2_000
_PAIR_CHUNK = 50_000


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


def clean_texts(titles: pd.Series, descriptions: pd.Series) -> list[str]:
    """ "title description", lowercased, whitespace collapsed, the description cut."""
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


class DocumentFrequencies:
    """Document frequencies per hashed bucket, counted chunk by chunk (bounded memory)."""

    def __init__(self) -> None:
        self.df = np.zeros(1 << HASH_BITS, dtype=np.float64)
        self.n = 0

    def add(self, texts: list[str]) -> None:
        for begin in range(0, len(texts), TEXT_CHUNK):
            counts = _count_matrix(texts[begin : begin + TEXT_CHUNK])
            self.df += np.bincount(counts.indices, minlength=1 << HASH_BITS)
        self.n += len(texts)

    def idf(self) -> np.ndarray:
        """ln((1 + N) / (1 + df)) + 1 per hashed bucket."""
        return np.asarray(np.log((1.0 + self.n) / (1.0 + self.df)) + 1.0)


def _weighted(matrix: sp.csr_matrix, idf: np.ndarray) -> sp.csr_matrix:
    """Counts -> sublinear tf × idf, L2-normalised rows, in place (no copy of the matrix)."""
    matrix.data = ((1.0 + np.log(matrix.data)) * idf[matrix.indices]).astype(np.float32)
    row_of = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    norms = np.sqrt(np.bincount(row_of, weights=matrix.data**2, minlength=matrix.shape[0]))
    norms[norms == 0] = 1.0
    matrix.data /= norms[row_of].astype(np.float32)
    return matrix


def tfidf_rows(texts: list[str], idf: np.ndarray) -> sp.csr_matrix:
    """L2-normalised TF-IDF rows of ``texts`` (row i = ``texts[i]``); each row depends on
    its own text and the idf only."""
    kept = [
        _count_matrix(texts[begin : begin + TEXT_CHUNK])
        for begin in range(0, len(texts), TEXT_CHUNK)
    ]
    if not kept:
        return sp.csr_matrix((0, 1 << HASH_BITS), dtype=np.float32)
    matrix = sp.vstack(kept, format="csr") if len(kept) > 1 else kept[0]
    return _weighted(matrix, idf)


def rowwise_cosine(matrix: sp.csr_matrix, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dot products of rows a[i] and b[i] of an L2-normalised sparse matrix."""
    out = np.empty(len(a), dtype=np.float64)
    for begin in range(0, len(a), _PAIR_CHUNK):
        end = begin + _PAIR_CHUNK
        prod = matrix[a[begin:end]].multiply(matrix[b[begin:end]])
        out[begin:end] = np.asarray(prod.sum(axis=1)).ravel()
    return np.clip(out, 0.0, 1.0)


def text_similarity(text_a: str, text_b: str, corpus: list[str] | None = None) -> float:
    """Title similarity of two texts, idf over them and ``corpus`` (default: the two texts)."""
    texts = clean_texts(pd.Series([text_a, text_b]), pd.Series(["", ""]))
    extra = clean_texts(pd.Series(corpus or []), pd.Series([""] * len(corpus or [])))
    frequencies = DocumentFrequencies()
    frequencies.add(texts + extra)
    matrix = tfidf_rows(texts, frequencies.idf())
    return float(rowwise_cosine(matrix, np.array([0]), np.array([1]))[0])
