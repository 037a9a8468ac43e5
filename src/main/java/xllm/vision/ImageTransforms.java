package xllm.vision;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;

import java.awt.image.BufferedImage;
import java.util.List;
import java.util.Random;

/**
 * Image preprocessing for an image encoder (EfficientNet, CLIP ViT): resize the shorter side, center crop,
 * normalise per channel, to a float CHW array; a list of images becomes one (B, 3, crop, crop) NDArray.
 *
 * <p>Resizing is PyTorch's antialiased separable resampling, {@code F.interpolate(x, size, mode, antialias=True,
 * align_corners=False)} on float pixels in [0, 1] (the tensor path of torchvision's {@code Resize}), written out
 * here in double precision: for output index i, center = scale·(i + 0.5) with scale = in/out; the filter
 * (triangle for bilinear, Keys cubic with a = −0.5 for bicubic) is stretched by the scale when downsampling
 * (support = radius·scale), truncated at the borders and its weights renormalised. Width is resampled first,
 * then height; only the rows and columns inside the crop are computed. The output size follows torchvision
 * (longer side {@code (int) (shorter · long / short)}), as does the crop offset ({@code round((size − crop) / 2)}).
 * It is not PIL's {@code Image.resize}, which works on 8-bit pixels with fixed-point weights (results within
 * about one grey level).
 *
 * <p>{@link #toChwAugmented} adds train-time random-resized crop and horizontal flip (seeded, deterministic).
 *
 * <p>Tested by {@code ImageTransformsTest} against {@code make_efficientnet_fixtures.py}'s torch output (bilinear
 * on three photos, bicubic on a slice of one).
 *
 * @param resizeShorter the shorter side after resizing (256)
 * @param crop          side of the center crop (224)
 * @param mean          per-channel mean subtracted from pixels in [0, 1] (R, G, B)
 * @param std           per-channel divisor after the mean
 * @param filter        resampling filter
 */
public record ImageTransforms(int resizeShorter, int crop, float[] mean, float[] std, Filter filter) {

    /** Resampling filters, as in PyTorch's antialiased interpolate. */
    public enum Filter {
        /** Triangle filter, radius 1 ("bilinear"). */
        BILINEAR(1.0),
        /** Keys cubic convolution with a = −0.5 (PyTorch's and PIL's antialiased "bicubic"), radius 2. */
        BICUBIC(2.0);

        final double radius;

        Filter(double radius) {
            this.radius = radius;
        }

        double weight(double x) {
            x = Math.abs(x);
            if (this == BILINEAR) {
                return x < 1.0 ? 1.0 - x : 0.0;
            }
            double a = -0.5;
            if (x < 1.0) {
                return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
            }
            if (x < 2.0) {
                return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
            }
            return 0.0;
        }
    }

    public ImageTransforms {
        if (mean.length != 3 || std.length != 3) {
            throw new IllegalArgumentException("mean and std need 3 values (R, G, B)");
        }
        if (crop <= 0 || resizeShorter < crop) {
            throw new IllegalArgumentException("need 0 < crop <= resizeShorter, got " + crop + ", " + resizeShorter);
        }
    }

    /** OpenAI CLIP's per-channel mean (R, G, B), on pixels in [0, 1]; also BLIP-2's and EVA-CLIP's. */
    public static final float[] CLIP_MEAN = {0.48145466f, 0.4578275f, 0.40821073f};
    /** OpenAI CLIP's per-channel std. */
    public static final float[] CLIP_STD = {0.26862954f, 0.26130258f, 0.27577711f};

    /**
     * CLIP preprocessing at {@code size} (224 for ViT-B/L-14, 364 for BLIP-2's EVA ViT-g at fine-tuning): shorter
     * side to {@code size} with bicubic, center crop {@code size}, CLIP mean/std (transformers'
     * {@code CLIPImageProcessor}, which resizes with PIL; see the class comment for that difference).
     */
    public static ImageTransforms clip(int size) {
        return new ImageTransforms(size, size, CLIP_MEAN.clone(), CLIP_STD.clone(), Filter.BICUBIC);
    }

    /**
     * EfficientNet-Lite preprocessing: shorter side 256, crop 224, bilinear, mean = std = 0.5 (pixels to [−1, 1];
     * the TF Lite builder's (x − 127) / 128 on 0..255, within 0.4%).
     */
    public static ImageTransforms efficientNetLite() {
        return new ImageTransforms(256, 224, new float[] {0.5f, 0.5f, 0.5f}, new float[] {0.5f, 0.5f, 0.5f},
                Filter.BILINEAR);
    }

    /** One image → (3, crop, crop) row-major floats: resize the shorter side, center crop, normalise. */
    public float[] toChw(BufferedImage image) {
        int width = image.getWidth();
        int height = image.getHeight();
        // step 1: output size of the resize (torchvision: the shorter side becomes resizeShorter)
        int outHeight;
        int outWidth;
        if (height <= width) {
            outHeight = resizeShorter;
            outWidth = (int) ((long) resizeShorter * width / height);
        } else {
            outWidth = resizeShorter;
            outHeight = (int) ((long) resizeShorter * height / width);
        }
        int top = (int) Math.round((outHeight - crop) / 2.0);
        int left = (int) Math.round((outWidth - crop) / 2.0);
        return resampleWindow(image, outWidth, outHeight, left, top, false);
    }

    /**
     * Train-time augmentation: torchvision's {@code RandomResizedCrop(crop, scale, ratio)} then
     * {@code RandomHorizontalFlip(p)}, then normalisation; one image → (3, crop, crop). The crop box is drawn as
     * torchvision draws it: up to 10 tries of an area fraction uniform in [minScale, maxScale] and an aspect ratio
     * log-uniform in [minRatio, maxRatio], rounded to whole pixels, accepted when it fits, at a uniform position;
     * otherwise the largest centred box with the ratio clamped to the range. The box is resized to crop × crop with
     * this transform's filter (aspect not kept). The same {@code random} state gives the same output, so a seeded
     * {@link Random} per sample makes an epoch reproducible.
     */
    public float[] toChwAugmented(BufferedImage image, Augmentation augmentation, Random random) {
        int width = image.getWidth();
        int height = image.getHeight();
        int[] box = augmentation.cropBox(width, height, random);                // {left, top, boxWidth, boxHeight}
        boolean flip = random.nextDouble() < augmentation.flipProbability();
        BufferedImage region = image.getSubimage(box[0], box[1], box[2], box[3]);
        return resampleWindow(region, crop, crop, 0, 0, flip);
    }

    /**
     * Random-resized-crop and flip parameters (torchvision's names). {@link #standard()} is torchvision's default
     * (scale 0.08–1); BLIP-2 pre-training used scale 0.5–1 ({@link #blip2()}).
     *
     * @param minScale        smallest crop area as a fraction of the image
     * @param maxScale        largest crop area fraction (≤ 1)
     * @param minRatio        smallest width / height of the crop box
     * @param maxRatio        largest width / height
     * @param flipProbability chance of a horizontal flip
     */
    public record Augmentation(double minScale, double maxScale, double minRatio, double maxRatio,
                               double flipProbability) {

        public Augmentation {
            if (!(0 < minScale && minScale <= maxScale && maxScale <= 1)) {
                throw new IllegalArgumentException("need 0 < minScale <= maxScale <= 1, got " + minScale + ", " + maxScale);
            }
            if (!(0 < minRatio && minRatio <= maxRatio)) {
                throw new IllegalArgumentException("need 0 < minRatio <= maxRatio, got " + minRatio + ", " + maxRatio);
            }
            if (!(0 <= flipProbability && flipProbability <= 1)) {
                throw new IllegalArgumentException("flip probability must be in [0, 1], got " + flipProbability);
            }
        }

        /** torchvision's defaults: scale (0.08, 1), ratio (3/4, 4/3), flip 0.5. */
        public static Augmentation standard() {
            return new Augmentation(0.08, 1.0, 3.0 / 4.0, 4.0 / 3.0, 0.5);
        }

        /** BLIP-2 / LAVIS "blip_image_train": scale (0.5, 1), ratio (3/4, 4/3), flip 0.5. */
        public static Augmentation blip2() {
            return new Augmentation(0.5, 1.0, 3.0 / 4.0, 4.0 / 3.0, 0.5);
        }

        /** {left, top, width, height} of a crop box, as torchvision's {@code RandomResizedCrop.get_params}. */
        int[] cropBox(int width, int height, Random random) {
            double area = (double) width * height;
            double logMin = Math.log(minRatio);
            double logMax = Math.log(maxRatio);
            for (int attempt = 0; attempt < 10; attempt++) {
                double targetArea = area * (minScale + (maxScale - minScale) * random.nextDouble());
                double ratio = Math.exp(logMin + (logMax - logMin) * random.nextDouble());
                int boxWidth = (int) Math.round(Math.sqrt(targetArea * ratio));
                int boxHeight = (int) Math.round(Math.sqrt(targetArea / ratio));
                if (0 < boxWidth && boxWidth <= width && 0 < boxHeight && boxHeight <= height) {
                    int top = random.nextInt(height - boxHeight + 1);
                    int left = random.nextInt(width - boxWidth + 1);
                    return new int[] {left, top, boxWidth, boxHeight};
                }
            }
            // fallback: central crop with the ratio clamped into range
            double inRatio = (double) width / height;
            int boxWidth;
            int boxHeight;
            if (inRatio < minRatio) {
                boxWidth = width;
                boxHeight = Math.max(1, Math.min(height, (int) Math.round(width / minRatio)));
            } else if (inRatio > maxRatio) {
                boxHeight = height;
                boxWidth = Math.max(1, Math.min(width, (int) Math.round(height * maxRatio)));
            } else {
                boxWidth = width;
                boxHeight = height;
            }
            return new int[] {(width - boxWidth) / 2, (height - boxHeight) / 2, boxWidth, boxHeight};
        }
    }

    /**
     * Resizes {@code image} to outWidth × outHeight and returns the crop × crop window at (left, top), normalised,
     * mirrored left-right when {@code flip}.
     */
    private float[] resampleWindow(BufferedImage image, int outWidth, int outHeight, int left, int top, boolean flip) {
        int width = image.getWidth();
        int height = image.getHeight();
        // step 1: separable weights for the crop window only
        Weights columns = weights(width, outWidth, left, crop);
        Weights rows = weights(height, outHeight, top, crop);
        // step 2: pixels to [0, 1] planes, (3, H, W)
        int[] argb = image.getRGB(0, 0, width, height, null, 0, width);
        double[][] planes = new double[3][width * height];
        for (int i = 0; i < argb.length; i++) {
            planes[0][i] = ((argb[i] >>> 16) & 0xFF) / 255.0;
            planes[1][i] = ((argb[i] >>> 8) & 0xFF) / 255.0;
            planes[2][i] = (argb[i] & 0xFF) / 255.0;
        }
        float[] out = new float[3 * crop * crop];
        double[] horizontal = new double[height * crop]; // (H, crop) after the width pass
        for (int channel = 0; channel < 3; channel++) {
            double[] plane = planes[channel];
            // step 3: width pass, every input row → crop columns
            for (int y = 0; y < height; y++) {
                int rowStart = y * width;
                for (int x = 0; x < crop; x++) {
                    double sum = 0.0;
                    int first = columns.first[x];
                    double[] w = columns.weights[x];
                    for (int j = 0; j < w.length; j++) {
                        sum += w[j] * plane[rowStart + first + j];
                    }
                    horizontal[y * crop + x] = sum;
                }
            }
            // step 4: height pass for the crop rows, then normalise (and mirror)
            double channelMean = mean[channel];
            double channelStd = std[channel];
            for (int y = 0; y < crop; y++) {
                int first = rows.first[y];
                double[] w = rows.weights[y];
                for (int x = 0; x < crop; x++) {
                    double sum = 0.0;
                    for (int j = 0; j < w.length; j++) {
                        sum += w[j] * horizontal[(first + j) * crop + x];
                    }
                    int target = flip ? crop - 1 - x : x;
                    out[(channel * crop + y) * crop + target] = (float) ((sum - channelMean) / channelStd);
                }
            }
        }
        return out;
    }

    /** Images → (B, 3, crop, crop) float32 in the given manager. */
    public NDArray batch(List<BufferedImage> images, NDManager manager) {
        if (images.isEmpty()) {
            throw new IllegalArgumentException("no images");
        }
        int size = 3 * crop * crop;
        float[] all = new float[images.size() * size];
        for (int b = 0; b < images.size(); b++) {
            System.arraycopy(toChw(images.get(b)), 0, all, b * size, size);
        }
        return manager.create(all, new Shape(images.size(), 3, crop, crop));
    }

    /** Filter taps of output indices [offset, offset + count) of a resize from inSize to outSize. */
    private record Weights(int[] first, double[][] weights) {}

    private Weights weights(int inSize, int outSize, int offset, int count) {
        double scale = (double) inSize / outSize;
        double support = scale >= 1.0 ? filter.radius * scale : filter.radius;
        double invScale = scale >= 1.0 ? 1.0 / scale : 1.0;
        int[] first = new int[count];
        double[][] weights = new double[count][];
        for (int i = 0; i < count; i++) {
            double center = scale * (offset + i + 0.5);
            // (long) truncates toward zero, as static_cast<int64_t> in PyTorch's kernel
            int min = (int) Math.max((long) (center - support + 0.5), 0L);
            int size = (int) Math.min((long) (center + support + 0.5), inSize) - min;
            double[] w = new double[size];
            double total = 0.0;
            for (int j = 0; j < size; j++) {
                w[j] = filter.weight((j + min - center + 0.5) * invScale);
                total += w[j];
            }
            for (int j = 0; j < size; j++) {
                w[j] = total != 0.0 ? w[j] / total : 0.0;
            }
            first[i] = min;
            weights[i] = w;
        }
        return new Weights(first, weights);
    }
}
