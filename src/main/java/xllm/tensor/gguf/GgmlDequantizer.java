package xllm.tensor.gguf;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.stream.IntStream;

/**
 * Turns ggml blocks into float32 values. Block layouts follow llama.cpp's {@code ggml-quants.c}
 * ({@code dequantize_row_*}); the arithmetic follows the Python {@code gguf} package's {@code gguf/quants.py}
 * operation by operation (e.g. Q4_K computes {@code (d * scale) * q - (dmin * min)}, each step rounded to
 * float32), so results are bit-identical to it. {@code GgufFileTest} checks every type bit for bit against
 * values produced by that package ({@code tools/reference/make_gguf_fixtures.py}).
 *
 * <p>Work is split into chunks of whole blocks; each chunk copies its bytes out of the (usually memory-mapped)
 * buffer with one bulk get and decodes from a byte array, and large tensors decode their chunks in parallel.
 */
final class GgmlDequantizer {

    /** Values decoded per parallel task; large enough that fork/join overhead is noise. */
    private static final int VALUES_PER_CHUNK = 1 << 16;
    /** Tensors smaller than this are decoded on the calling thread. */
    private static final int PARALLEL_THRESHOLD = 1 << 18;

    /** Every IEEE half value as float, indexed by its 16 bits: a table lookup beats bit fiddling per value. */
    private static final float[] HALF_TO_FLOAT = new float[1 << 16];

    static {
        for (int bits = 0; bits < HALF_TO_FLOAT.length; bits++) HALF_TO_FLOAT[bits] = halfToFloat(bits);
    }

    private GgmlDequantizer() {
    }

    /**
     * Decodes {@code blockCount} blocks of {@code type} starting at {@code data}'s index 0 into
     * {@code out[outOffset ..]}. The caller has checked that the type is supported and the sizes fit.
     */
    static void dequantize(GgmlType type, ByteBuffer data, int blockCount, float[] out, int outOffset) {
        int blocksPerChunk = Math.max(1, VALUES_PER_CHUNK / type.blockSize);
        int chunkCount = (blockCount + blocksPerChunk - 1) / blocksPerChunk;
        IntStream chunks = IntStream.range(0, chunkCount);
        if ((long) blockCount * type.blockSize >= PARALLEL_THRESHOLD) chunks = chunks.parallel();
        chunks.forEach(chunk -> {
            int firstBlock = chunk * blocksPerChunk;
            int blocks = Math.min(blocksPerChunk, blockCount - firstBlock);
            byte[] bytes = new byte[blocks * type.typeSize];
            // duplicate(): absolute reads leave the shared buffer untouched, but a private view keeps that obvious
            data.duplicate().get(firstBlock * type.typeSize, bytes);
            decode(type, bytes, blocks, out, outOffset + firstBlock * type.blockSize);
        });
    }

    /** The float value of IEEE 754 half-precision bits (exact: every half is a float). */
    static float halfToFloat(int bits) {
        int sign = (bits & 0x8000) << 16;
        int exponent = (bits >>> 10) & 0x1f;
        int mantissa = bits & 0x3ff;
        if (exponent == 0x1f) return Float.intBitsToFloat(sign | 0x7f800000 | (mantissa << 13));
        if (exponent == 0) {
            // zero or subnormal: mantissa * 2^-24, exact in float
            float magnitude = mantissa * 0x1p-24f;
            return sign == 0 ? magnitude : -magnitude;
        }
        return Float.intBitsToFloat(sign | ((exponent - 15 + 127) << 23) | (mantissa << 13));
    }

    private static void decode(GgmlType type, byte[] in, int blocks, float[] out, int o) {
        switch (type) {
            case F32 -> ByteBuffer.wrap(in).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out, o, blocks);
            case F16 -> { for (int i = 0; i < blocks; i++) out[o + i] = half(in, 2 * i); }
            case BF16 -> { for (int i = 0; i < blocks; i++) out[o + i] = Float.intBitsToFloat(u16(in, 2 * i) << 16); }
            case F64 -> {
                var doubles = ByteBuffer.wrap(in).order(ByteOrder.LITTLE_ENDIAN).asDoubleBuffer();
                for (int i = 0; i < blocks; i++) out[o + i] = (float) doubles.get(i);
            }
            case I8 -> { for (int i = 0; i < blocks; i++) out[o + i] = in[i]; }
            case I16 -> { for (int i = 0; i < blocks; i++) out[o + i] = (short) u16(in, 2 * i); }
            case I32 -> {
                var ints = ByteBuffer.wrap(in).order(ByteOrder.LITTLE_ENDIAN).asIntBuffer();
                for (int i = 0; i < blocks; i++) out[o + i] = ints.get(i);
            }
            case I64 -> {
                var longs = ByteBuffer.wrap(in).order(ByteOrder.LITTLE_ENDIAN).asLongBuffer();
                for (int i = 0; i < blocks; i++) out[o + i] = longs.get(i);
            }
            case Q4_0 -> q4_0(in, blocks, out, o);
            case Q4_1 -> q4_1(in, blocks, out, o);
            case Q5_0 -> q5_0(in, blocks, out, o);
            case Q5_1 -> q5_1(in, blocks, out, o);
            case Q8_0 -> q8_0(in, blocks, out, o);
            case Q2_K -> q2_k(in, blocks, out, o);
            case Q3_K -> q3_k(in, blocks, out, o);
            case Q4_K -> q4_k(in, blocks, out, o);
            case Q5_K -> q5_k(in, blocks, out, o);
            case Q6_K -> q6_k(in, blocks, out, o);
            default -> throw new IllegalStateException("no decoder for " + type);
        }
    }

    // Q4_0 block (18 bytes): half d, 16 bytes of nibbles. Value j is the low nibble of byte j, value j + 16
    // the high nibble; x = d * (q - 8).
    private static void q4_0(byte[] in, int blocks, float[] out, int o) {
        for (int block = 0, p = 0; block < blocks; block++, p += 18, o += 32) {
            float d = half(in, p);
            for (int j = 0; j < 16; j++) {
                int packed = in[p + 2 + j];
                out[o + j] = d * ((packed & 0x0f) - 8);
                out[o + j + 16] = d * (((packed >> 4) & 0x0f) - 8);
            }
        }
    }

    // Q4_1 block (20 bytes): half d, half m, 16 bytes of nibbles as in Q4_0; x = d * q + m.
    private static void q4_1(byte[] in, int blocks, float[] out, int o) {
        for (int block = 0, p = 0; block < blocks; block++, p += 20, o += 32) {
            float d = half(in, p);
            float m = half(in, p + 2);
            for (int j = 0; j < 16; j++) {
                int packed = in[p + 4 + j];
                out[o + j] = d * (packed & 0x0f) + m;
                out[o + j + 16] = d * ((packed >> 4) & 0x0f) + m;
            }
        }
    }

    // Q5_0 block (22 bytes): half d, 32-bit little-endian qh holding the fifth bit of value j at bit j,
    // 16 bytes of nibbles as in Q4_0; x = d * (q - 16).
    private static void q5_0(byte[] in, int blocks, float[] out, int o) {
        for (int block = 0, p = 0; block < blocks; block++, p += 22, o += 32) {
            float d = half(in, p);
            int highBits = u32(in, p + 2);
            for (int j = 0; j < 16; j++) {
                int packed = in[p + 6 + j];
                int low = (packed & 0x0f) | (((highBits >>> j) & 1) << 4);
                int high = ((packed >> 4) & 0x0f) | (((highBits >>> (j + 16)) & 1) << 4);
                out[o + j] = d * (low - 16);
                out[o + j + 16] = d * (high - 16);
            }
        }
    }

    // Q5_1 block (24 bytes): half d, half m, qh and nibbles as in Q5_0; x = d * q + m.
    private static void q5_1(byte[] in, int blocks, float[] out, int o) {
        for (int block = 0, p = 0; block < blocks; block++, p += 24, o += 32) {
            float d = half(in, p);
            float m = half(in, p + 2);
            int highBits = u32(in, p + 4);
            for (int j = 0; j < 16; j++) {
                int packed = in[p + 8 + j];
                int low = (packed & 0x0f) | (((highBits >>> j) & 1) << 4);
                int high = ((packed >> 4) & 0x0f) | (((highBits >>> (j + 16)) & 1) << 4);
                out[o + j] = d * low + m;
                out[o + j + 16] = d * high + m;
            }
        }
    }

    // Q8_0 block (34 bytes): half d, 32 signed bytes; x = q * d.
    private static void q8_0(byte[] in, int blocks, float[] out, int o) {
        for (int block = 0, p = 0; block < blocks; block++, p += 34, o += 32) {
            float d = half(in, p);
            for (int j = 0; j < 32; j++) out[o + j] = in[p + 2 + j] * d;
        }
    }

    // Q2_K super-block (84 bytes, 256 values in 16 groups of 16): 16 scale bytes (low nibble scales d, high
    // nibble scales dmin), 64 bytes of 2-bit values, half d, half dmin. Value 128*h + 32*s + l is bits 2s..2s+1
    // of byte 32*h + l; x = (d * scale) * q - (dmin * min).
    private static void q2_k(byte[] in, int blocks, float[] out, int o) {
        for (int block = 0, p = 0; block < blocks; block++, p += 84, o += 256) {
            float d = half(in, p + 80);
            float dmin = half(in, p + 82);
            for (int group = 0; group < 16; group++) {
                int scaleByte = in[p + group] & 0xff;
                float scale = d * (scaleByte & 0x0f);
                float min = dmin * (scaleByte >> 4);
                int h = group >> 3, s = (group >> 1) & 3, firstL = (group & 1) * 16;
                int base = o + group * 16;
                for (int i = 0; i < 16; i++) {
                    int q = (in[p + 16 + 32 * h + firstL + i] >> (2 * s)) & 3;
                    out[base + i] = scale * q - min;
                }
            }
        }
    }

    // Q3_K super-block (110 bytes, 256 values in 16 groups of 16): 32 bytes hmask, 64 bytes of 2-bit values,
    // 12 bytes of 6-bit signed scales, half d. The low two bits come as in Q2_K; bit b of hmask byte l is the
    // high bit of value 32*b + l, and a clear bit subtracts 4. x = (d * (scale - 32)) * q.
    private static void q3_k(byte[] in, int blocks, float[] out, int o) {
        int[] scales = new int[16];
        for (int block = 0, p = 0; block < blocks; block++, p += 110, o += 256) {
            float d = half(in, p + 108);
            int scaleBytes = p + 96;
            for (int group = 0; group < 16; group++) {
                int low = ((in[scaleBytes + (group & 7)] & 0xff) >> (4 * (group >> 3))) & 0x0f;
                int high = ((in[scaleBytes + 8 + (group & 3)] & 0xff) >> (2 * (group >> 2))) & 0x03;
                scales[group] = (low | (high << 4)) - 32;
            }
            for (int group = 0; group < 16; group++) {
                float scale = d * scales[group];
                int h = group >> 3, s = (group >> 1) & 3, firstL = (group & 1) * 16;
                int base = o + group * 16;
                for (int i = 0; i < 16; i++) {
                    int flat = group * 16 + i;
                    int q = (in[p + 32 + 32 * h + firstL + i] >> (2 * s)) & 3;
                    int highBit = (in[p + (flat & 31)] >> (flat >> 5)) & 1;
                    out[base + i] = scale * (q - (highBit == 0 ? 4 : 0));
                }
            }
        }
    }

    // Q4_K super-block (144 bytes, 256 values in 8 groups of 32): half d, half dmin, 12 bytes packing eight
    // 6-bit scales and mins, 128 bytes of nibbles. Group 2c + k is nibble k of bytes 32c .. 32c + 31.
    // x = (d * scale) * q - (dmin * min).
    private static void q4_k(byte[] in, int blocks, float[] out, int o) {
        int[] scales = new int[8];
        int[] mins = new int[8];
        for (int block = 0, p = 0; block < blocks; block++, p += 144, o += 256) {
            float d = half(in, p);
            float dmin = half(in, p + 2);
            unpackScalesAndMins(in, p + 4, scales, mins);
            for (int group = 0; group < 8; group++) {
                float scale = d * scales[group];
                float min = dmin * mins[group];
                int bytes = p + 16 + 32 * (group >> 1), shift = 4 * (group & 1);
                int base = o + 32 * group;
                for (int l = 0; l < 32; l++) out[base + l] = scale * ((in[bytes + l] >> shift) & 0x0f) - min;
            }
        }
    }

    // Q5_K super-block (176 bytes): half d, half dmin, 12 scale/min bytes as Q4_K, 32 bytes qh, 128 bytes of
    // nibbles as Q4_K; bit g of qh byte l is the fifth bit of value l in group g. x as Q4_K.
    private static void q5_k(byte[] in, int blocks, float[] out, int o) {
        int[] scales = new int[8];
        int[] mins = new int[8];
        for (int block = 0, p = 0; block < blocks; block++, p += 176, o += 256) {
            float d = half(in, p);
            float dmin = half(in, p + 2);
            unpackScalesAndMins(in, p + 4, scales, mins);
            for (int group = 0; group < 8; group++) {
                float scale = d * scales[group];
                float min = dmin * mins[group];
                int bytes = p + 48 + 32 * (group >> 1), shift = 4 * (group & 1);
                int base = o + 32 * group;
                for (int l = 0; l < 32; l++) {
                    int q = ((in[bytes + l] >> shift) & 0x0f) | (((in[p + 16 + l] >> group) & 1) << 4);
                    out[base + l] = scale * q - min;
                }
            }
        }
    }

    // Q6_K super-block (210 bytes, 256 values in 16 groups of 16): 128 bytes low nibbles, 64 bytes high
    // 2-bit pairs, 16 signed scale bytes, half d. Value 128*h + 32*s + l takes nibble (s >> 1) of
    // ql[64h + 32(s & 1) + l] and bits 2s..2s+1 of qh[32h + l]; x = (d * scale) * (q - 32).
    private static void q6_k(byte[] in, int blocks, float[] out, int o) {
        for (int block = 0, p = 0; block < blocks; block++, p += 210, o += 256) {
            float d = half(in, p + 208);
            for (int group = 0; group < 16; group++) {
                float scale = d * in[p + 192 + group];
                int h = group >> 3, s = (group >> 1) & 3, firstL = (group & 1) * 16;
                int lowBytes = p + 64 * h + 32 * (s & 1) + firstL, lowShift = 4 * (s >> 1);
                int highBytes = p + 128 + 32 * h + firstL;
                int base = o + group * 16;
                for (int i = 0; i < 16; i++) {
                    int q = ((in[lowBytes + i] >> lowShift) & 0x0f) | (((in[highBytes + i] >> (2 * s)) & 3) << 4);
                    out[base + i] = scale * (q - 32);
                }
            }
        }
    }

    // The 12-byte K-quant scale block: bytes 0-3 hold scales 0-3 (low 6 bits) and the top bits of scales 4-7;
    // bytes 4-7 likewise for the mins; bytes 8-11 hold the low nibbles of scales 4-7 (low) and mins 4-7 (high).
    private static void unpackScalesAndMins(byte[] in, int p, int[] scales, int[] mins) {
        for (int j = 0; j < 4; j++) {
            int scaleByte = in[p + j] & 0xff, minByte = in[p + 4 + j] & 0xff, mixed = in[p + 8 + j] & 0xff;
            scales[j] = scaleByte & 0x3f;
            mins[j] = minByte & 0x3f;
            scales[j + 4] = (mixed & 0x0f) | ((scaleByte >> 2) & 0x30);
            mins[j + 4] = (mixed >> 4) | ((minByte >> 2) & 0x30);
        }
    }

    private static float half(byte[] in, int p) {
        return HALF_TO_FLOAT[u16(in, p)];
    }

    private static int u16(byte[] in, int p) {
        return (in[p] & 0xff) | ((in[p + 1] & 0xff) << 8);
    }

    private static int u32(byte[] in, int p) {
        return (in[p] & 0xff) | ((in[p + 1] & 0xff) << 8) | ((in[p + 2] & 0xff) << 16) | ((in[p + 3] & 0xff) << 24);
    }
}
