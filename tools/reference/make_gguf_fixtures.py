"""Writes the GGUF fixtures for xllm.tensor.gguf tests, with expected values from the Python `gguf` package.

Run with an environment that has gguf==0.19.0 and numpy:

    python tools/reference/make_gguf_fixtures.py                        # tiny fixtures (committed)
    python tools/reference/make_gguf_fixtures.py --smollm2 PATH.gguf    # + expectations for the real file

Outputs, under src/test/resources/fixtures/gguf/:
  tiny.gguf              v3 file: metadata of every GGUF value type and one tensor of every type xllm
                         dequantises. Quantised with gguf.quants where the package can quantise (Q4_0 ... Q8_0,
                         BF16); K-quant blocks are random bytes with sane half-float scales, which exercises
                         every bit of the layout.
  tiny_expected.json     per tensor: GGML type, row-major shape, absolute offset and byte size (as GGUFReader
                         reads them back) and the float32 values of gguf.quants.dequantize (numpy astype for the
                         plain types), as decimal numbers that round-trip to the exact float32.
  unsupported.gguf       a file with an IQ2_XS tensor 'blk.0.attn_q.weight' (which xllm does not dequantise)
                         beside an F32 tensor.
  smollm2_expected.json  (only with --smollm2) for three tensors of SmolLM2-135M-Instruct.Q4_1.gguf: shape,
                         type, the first 64 values, 64 values at a fixed stride, and float64 sums.
"""
import argparse
import json
from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T

OUT = Path(__file__).resolve().parents[2] / "src/test/resources/fixtures/gguf"
RNG = np.random.default_rng(20240607)
ALIGNMENT = 64


def half_bytes(values):
    return np.asarray(values, dtype=np.float16).view(np.uint8)


def random_k_blocks(qtype, n_blocks):
    """Random K-quant blocks whose half-float fields (d, dmin) are finite, small numbers."""
    block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
    blocks = RNG.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    # byte offsets of the half-float fields inside each block (ggml-quants.h block_q*_K)
    half_fields = {T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208]}[qtype]
    for offset in half_fields:
        blocks[:, offset:offset + 2] = half_bytes(RNG.uniform(-0.05, 0.05, size=n_blocks)).reshape(n_blocks, 2)
    return blocks


def expected_values(reader_tensor):
    """Float32 values of a tensor as the gguf package dequantises it, flattened row-major."""
    qtype = reader_tensor.tensor_type
    data = np.asarray(reader_tensor.data)
    if qtype in (T.F64, T.I8, T.I16, T.I32, T.I64):
        values = data.astype(np.float32)  # gguf.quants has no F64/int path; numpy's cast is the reference
    else:
        values = gguf.quants.dequantize(data, qtype)
    return np.ascontiguousarray(values, dtype=np.float32).reshape(-1)


def write_json(path, header, tensors):
    """JSON with one line per tensor: small, and diffs stay readable."""
    head = json.dumps(header, ensure_ascii=False)[:-1]
    body = ",\n  ".join(json.dumps(tensor) for tensor in tensors)
    path.write_text(f'{head}, "tensors": [\n  {body}\n]}}\n')


def header_end(reader):
    """Byte just after the last tensor info: where a reader starts aligning to find the data section."""
    field = reader.tensors[-1].field
    return field.offset + sum(part.nbytes for part in field.parts)


def write_tiny():
    # Grow a padding string until the data section starts at least 32 bytes after the header: only then does
    # a reader that ignores general.alignment (and pads to the default 32) put the data in the wrong place.
    for padding in range(0, ALIGNMENT, 4):
        global RNG
        RNG = np.random.default_rng(20240607)
        path = write_tiny_with_padding("x" * padding)
        reader = gguf.GGUFReader(path)
        if reader.data_offset - header_end(reader) >= 32:
            break
    else:
        raise AssertionError("no padding makes the alignment observable")
    write_tiny_expected(path, reader)


def write_tiny_with_padding(padding):
    path = OUT / "tiny.gguf"
    writer = gguf.GGUFWriter(path, arch="tiny")
    writer.add_custom_alignment(ALIGNMENT)  # not the default 32, so a reader that ignores the key misplaces data
    writer.add_string("test.padding", padding)
    writer.add_uint8("test.uint8", 200)
    writer.add_int8("test.int8", -100)
    writer.add_uint16("test.uint16", 60000)
    writer.add_int16("test.int16", -30000)
    writer.add_uint32("test.uint32", 4000000000)
    writer.add_int32("test.int32", -2000000000)
    writer.add_uint64("test.uint64", 1 << 40)
    writer.add_int64("test.int64", -(1 << 50))
    writer.add_float32("test.float32", 0.1)
    writer.add_float64("test.float64", 2.718281828459045)
    writer.add_bool("test.bool_true", True)
    writer.add_bool("test.bool_false", False)
    writer.add_string("test.string", "héllo ✓ gguf")
    writer.add_array("test.strings", ["alpha", "", "γάμμα"])
    writer.add_array("test.int32s", [1, -2, 3])
    writer.add_key_value("test.uint8s", [0, 255, 7], gguf.GGUFValueType.ARRAY, sub_type=gguf.GGUFValueType.UINT8)
    writer.add_array("test.float32s", [0.5, -1.25])
    writer.add_array("test.bools", [True, False, True])
    writer.add_array("test.nested", [[1, 2], [3], [4, 5, 6]])
    writer.add_array("test.nested_strings", [["a", "b"], ["c"]])

    def plain(name, array):
        writer.add_tensor(name, array)

    def quantised(name, qtype, shape):
        values = RNG.standard_normal(size=shape).astype(np.float32)
        writer.add_tensor(name, gguf.quants.quantize(values, qtype), raw_dtype=qtype)

    def k_quant(name, qtype, shape):
        n_blocks = int(np.prod(shape)) // gguf.GGML_QUANT_SIZES[qtype][0]
        blocks = random_k_blocks(qtype, n_blocks)
        byte_shape = gguf.quants.quant_shape_to_byte_shape(shape, qtype)
        writer.add_tensor(name, blocks.reshape(byte_shape), raw_dtype=qtype)

    plain("f32_3d", RNG.standard_normal(size=(2, 3, 8)).astype(np.float32))
    plain("f16", RNG.standard_normal(size=(3, 256)).astype(np.float16))
    bf16_values = RNG.standard_normal(size=(3, 256)).astype(np.float32)
    writer.add_tensor("bf16", gguf.quants.quantize(bf16_values, T.BF16), raw_dtype=T.BF16)
    plain("f64", RNG.standard_normal(size=(2, 16)).astype(np.float64))
    plain("i8", RNG.integers(-128, 128, size=(4,), dtype=np.int8))
    plain("i16", RNG.integers(-30000, 30000, size=(4,), dtype=np.int16))
    plain("i32", RNG.integers(-1000000, 1000000, size=(4,), dtype=np.int32))
    plain("i64", RNG.integers(-1000000, 1000000, size=(4,), dtype=np.int64))
    quantised("q8_0", T.Q8_0, (3, 256))
    quantised("q8_0_3d", T.Q8_0, (2, 3, 64))
    quantised("q4_0", T.Q4_0, (2, 512))
    quantised("q4_1", T.Q4_1, (2, 512))
    quantised("q5_0", T.Q5_0, (3, 256))
    quantised("q5_1", T.Q5_1, (3, 256))
    k_quant("q2_k", T.Q2_K, (3, 256))
    k_quant("q3_k", T.Q3_K, (3, 256))
    k_quant("q4_k", T.Q4_K, (2, 512))
    k_quant("q5_k", T.Q5_K, (3, 256))
    k_quant("q6_k", T.Q6_K, (2, 512))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def write_tiny_expected(path, reader):
    # The package's own reader is the oracle for offsets and the stored bytes.
    tensors = []
    for t in reader.tensors:
        values = expected_values(t)
        assert np.all(np.isfinite(values)), t.name
        tensors.append({
            "name": t.name,
            "type": t.tensor_type.name,
            "shape": [int(d) for d in reversed(t.shape)],  # reader gives ne order; xllm is row-major
            "offset": int(t.data_offset),
            "byteSize": int(t.n_bytes),
            "values": [float(v) for v in values],
        })
    header = {"file": path.name, "version": 3, "alignment": ALIGNMENT, "dataOffset": int(reader.data_offset),
              "headerEnd": int(header_end(reader))}
    write_json(OUT / "tiny_expected.json", header, tensors)
    print(f"wrote {path} ({path.stat().st_size} bytes) with {len(tensors)} tensors")


def write_unsupported():
    path = OUT / "unsupported.gguf"
    writer = gguf.GGUFWriter(path, arch="tiny")
    block_size, type_size = gguf.GGML_QUANT_SIZES[T.IQ2_XS]
    writer.add_tensor("blk.0.attn_q.weight", RNG.integers(0, 256, size=(2, type_size), dtype=np.uint8),
                      raw_dtype=T.IQ2_XS)
    writer.add_tensor("blk.0.attn_norm.weight", np.arange(8, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    print(f"wrote {path} ({path.stat().st_size} bytes)")


def write_smollm2(model_path):
    reader = gguf.GGUFReader(model_path)
    by_name = {t.name: t for t in reader.tensors}
    checks = []
    for name in ["token_embd.weight", "blk.0.attn_q.weight", "blk.29.ffn_down.weight", "output_norm.weight"]:
        t = by_name[name]
        values = expected_values(t)
        stride = max(1, values.size // 64)
        checks.append({
            "name": name,
            "type": t.tensor_type.name,
            "shape": [int(d) for d in reversed(t.shape)],
            "first": [float(v) for v in values[:64]],
            "stride": stride,
            "strided": [float(v) for v in values[::stride][:64]],
            "sum": float(values.astype(np.float64).sum()),
            "sumAbs": float(np.abs(values.astype(np.float64)).sum()),
        })
    out = OUT / "smollm2_expected.json"
    write_json(out, {"file": Path(model_path).name, "tensorCount": len(reader.tensors)}, checks)
    print(f"wrote {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smollm2", help="path of SmolLM2-135M-Instruct.Q4_1.gguf")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    write_tiny()
    write_unsupported()
    if args.smollm2:
        write_smollm2(args.smollm2)
