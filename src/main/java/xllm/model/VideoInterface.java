package xllm.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import xllm.tensor.TrainableParameter;
import xllm.vision.VideoReader;
import xllm.x2l.QFormerConfig;
import xllm.x2l.VAdapter;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * The paper's video interface (§3.1, Fig. 1): T frames sampled uniformly from the video, each through the frozen
 * image encoder and the Q-Former on its own, the T × Q query outputs concatenated in time order and mapped by the
 * V-Adapter (T × 32 LLM tokens at demo size). It starts from the trained image interface (paper §1: "reuses the
 * parameters of the image interface"; recipes rename {@code imageInterface.} to {@code videoInterface.}) and keeps
 * its own parameters {@code videoInterface.qformer.…}, {@code videoInterface.adapter.{weight,bias}}.
 */
public final class VideoInterface implements ModalityInterface {

    /** Most frames a video may be sampled into: T × Q tokens go into the prompt (paper: 5 in training, 10 at most). */
    public static final int MAX_FRAMES = 64;

    static final String PREFIX = Modality.VIDEO.parameterPrefix();

    private final VisionSide side;
    private final VAdapter adapter;
    private final int frames;
    private final boolean ownsSide;

    private VideoInterface(VisionSide side, VAdapter adapter, int frames, boolean ownsSide) {
        requireFrames(frames);
        this.side = side;
        this.adapter = adapter;
        this.frames = frames;
        this.ownsSide = ownsSide;
    }

    /** Refuses a frame count outside 1..{@value #MAX_FRAMES}. */
    public static void requireFrames(int frames) {
        if (frames < 1 || frames > MAX_FRAMES) {
            throw new IllegalArgumentException("frames per video must be in 1.." + MAX_FRAMES + ", got " + frames);
        }
    }

    public static VideoInterface create(String encoder, int frames, QFormerConfig qformer, Path bertInit, int llmWidth,
                                        long seed, NDManager manager) throws IOException {
        requireFrames(frames);
        VisionSide side = VisionSide.create(encoder, qformer, bertInit, seed, manager);
        manager.getEngine().setRandomSeed((int) seed);
        return new VideoInterface(side, VAdapter.initialise(PREFIX + "adapter", side.outputWidth(), llmWidth, manager),
                frames, true);
    }

    static VideoInterface create(InterfaceConfig.Video config, NDManager manager) throws IOException {
        return create(config.encoder().source(), config.frames(), config.qformer(), null, config.llmWidth(), 0, manager);
    }

    /**
     * The same trained interface sampling {@code count} frames per video (each frame is encoded alone, so T may
     * differ from training); shares this interface's tensors, which stay owned here.
     */
    public VideoInterface withFrames(int count) {
        return count == frames ? this : new VideoInterface(side, adapter, count, false);
    }

    public int frames() {
        return frames;
    }

    @Override
    public Modality modality() {
        return Modality.VIDEO;
    }

    @Override
    public Features prepare(Path video) throws IOException {
        List<BufferedImage> sampled = VideoReader.read(video, frames).frames();
        long[] image = side.encoder().inputShape();
        int per = (int) (image[0] * image[1] * image[2]);
        float[] out = new float[frames * per];
        for (int t = 0; t < frames; t++) System.arraycopy(side.pixels(sampled.get(t)), 0, out, t * per, per);
        return new Features(out, new long[] {frames, image[0], image[1], image[2]});
    }

    @Override
    public List<Features> encode(List<Features> prepared, NDManager scope) {
        try (NDManager local = scope.newSubManager()) {
            NDArray videos = Features.stack(prepared, local);                                // (B, T, 3, H, W)
            long batch = prepared.size(), count = prepared.get(0).shape()[0];
            long[] image = side.encoder().inputShape();
            NDArray perFrame = side.features(videos.reshape(batch * count, image[0], image[1], image[2]));
            long[] feature = side.encoder().featureShape();
            return Features.unstack(perFrame.reshape(batch, count, feature[0], feature[1]),
                    new long[] {count, feature[0], feature[1]});                             // (T, N, C) each
        }
    }

    @Override
    public List<NDArray> adapt(List<Features> encoded, NDManager scope) {
        NDArray features = Features.stack(encoded, scope);                                   // (B, T, N, C)
        long[] shape = features.getShape().getShape();
        NDArray queries = side.queries(features.reshape(shape[0] * shape[1], shape[2], shape[3])); // (B·T, Q, H)
        NDArray perFrame = queries.reshape(shape[0], shape[1], queries.getShape().get(1), queries.getShape().get(2));
        return Features.rows(adapter.forward(perFrame));                                    // (B, T·Q, D)
    }

    @Override
    public List<TrainableParameter> parameters() {
        return side.parameters(PREFIX, adapter.parameters());
    }

    @Override
    public List<NDArray> frozenTensors() {
        return side.frozenTensors();
    }

    @Override
    public String fingerprint() {
        long[] feature = side.encoder().featureShape();
        return side.fingerprint(new long[] {frames, feature[0], feature[1]});
    }

    @Override
    public InterfaceConfig.Video config() {
        return new InterfaceConfig.Video(side.record(), frames, side.qformerConfig(), adapter.outputWidth());
    }

    @Override
    public void close() {
        if (ownsSide) side.close();
    }
}
