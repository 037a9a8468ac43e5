package xllm.tensor.gguf;

/**
 * The ggml tensor element types a GGUF file may declare, with the ids, block sizes and block byte sizes of
 * ggml's {@code ggml_type} (the same table as {@code GGML_QUANT_SIZES} in the Python {@code gguf} package 0.19).
 *
 * <p>A block of {@link #blockSize} consecutive values along a row is stored in {@link #typeSize} bytes; plain
 * types have a block of one value. {@link #supported()} says whether {@link GgufFile#dequantize} can turn the
 * type into float32; {@code GgufFileTest} checks every supported type against the Python package.
 */
public enum GgmlType {
    F32(0, 1, 4, true),
    F16(1, 1, 2, true),
    Q4_0(2, 32, 2 + 16, true),
    Q4_1(3, 32, 2 + 2 + 16, true),
    Q5_0(6, 32, 2 + 4 + 16, true),
    Q5_1(7, 32, 2 + 2 + 4 + 16, true),
    Q8_0(8, 32, 2 + 32, true),
    Q8_1(9, 32, 4 + 4 + 32, false),
    Q2_K(10, 256, 2 + 2 + 256 / 16 + 256 / 4, true),
    Q3_K(11, 256, 2 + 256 / 4 + 256 / 8 + 12, true),
    Q4_K(12, 256, 2 + 2 + 256 / 2 + 12, true),
    Q5_K(13, 256, 2 + 2 + 256 / 2 + 256 / 8 + 12, true),
    Q6_K(14, 256, 2 + 256 / 2 + 256 / 4 + 256 / 16, true),
    Q8_K(15, 256, 4 + 256 + 256 / 8, false),
    IQ2_XXS(16, 256, 2 + 256 / 4, false),
    IQ2_XS(17, 256, 2 + 256 / 4 + 256 / 32, false),
    IQ3_XXS(18, 256, 2 + 256 / 4 + 256 / 8, false),
    IQ1_S(19, 256, 2 + 256 / 8 + 256 / 16, false),
    IQ4_NL(20, 32, 2 + 16, false),
    IQ3_S(21, 256, 2 + 256 / 4 + 256 / 8 + 256 / 32 + 4, false),
    IQ2_S(22, 256, 2 + 256 / 4 + 256 / 16, false),
    IQ4_XS(23, 256, 2 + 2 + 256 / 2 + 256 / 64, false),
    I8(24, 1, 1, true),
    I16(25, 1, 2, true),
    I32(26, 1, 4, true),
    I64(27, 1, 8, true),
    F64(28, 1, 8, true),
    IQ1_M(29, 256, 256 / 8 + 256 / 16 + 256 / 32, false),
    BF16(30, 1, 2, true),
    TQ1_0(34, 256, 2 + 4 * 13, false),
    TQ2_0(35, 256, 2 + 64, false),
    MXFP4(39, 32, 1 + 16, false),
    NVFP4(40, 64, 4 + 32, false),
    Q1_0(41, 128, 2 + 16, false);

    /** The numeric id stored in a GGUF tensor info. */
    public final int id;
    /** Values per block along the innermost dimension. */
    public final int blockSize;
    /** Bytes per block. */
    public final int typeSize;
    private final boolean supported;

    GgmlType(int id, int blockSize, int typeSize, boolean supported) {
        this.id = id;
        this.blockSize = blockSize;
        this.typeSize = typeSize;
        this.supported = supported;
    }

    /** Whether {@link GgufFile#dequantize} handles this type. */
    public boolean supported() {
        return supported;
    }

    /** The type with this ggml id, or null when the id is unknown (a newer or corrupt file). */
    public static GgmlType fromId(long id) {
        for (GgmlType type : values()) {
            if (type.id == id) return type;
        }
        return null;
    }
}
