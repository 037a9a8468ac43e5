package xllm.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import xllm.RealWeights;
import xllm.vision.EfficientNetLite0;
import xllm.vision.VideoReader;
import xllm.vision.VideoWriter;
import xllm.x2l.LinearAdapter;
import xllm.x2l.QFormer;

import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The video interface is the image interface applied frame by frame: its T×Q tokens must equal, in time order, the
 * image interface's tokens for each sampled frame (same Q-Former and adapter), and its parameters carry the
 * {@code videoInterface.} prefix that stage-2 video recipes rename the image interface's tensors to.
 */
class VideoInterfaceTest {

    private static List<BufferedImage> movingSquare(int count) {
        List<BufferedImage> frames = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            BufferedImage frame = new BufferedImage(96, 96, BufferedImage.TYPE_INT_RGB);
            Graphics2D g = frame.createGraphics();
            g.setColor(Color.LIGHT_GRAY);
            g.fillRect(0, 0, 96, 96);
            g.setColor(new Color(220, 40, 40));
            g.fillRect(8 + 8 * i, 36, 20, 20);
            g.dispose();
            frames.add(frame);
        }
        return frames;
    }

    @Test
    void videoTokensAreEachSampledFrameThroughTheImagePathInTimeOrder(@TempDir Path dir) throws Exception {
        Path video = dir.resolve("square.avi");
        Files.write(video, VideoWriter.mjpegAvi(movingSquare(8), 8, 0.95f));
        try (NDManager manager = NDManager.newBaseManager()) {
            EfficientNetLite0 encoder = EfficientNetLite0.load(RealWeights.require("efficientnet-lite0"), manager);
            var config = QFormerImageInterface.qformerConfig("tiny");
            QFormer qformer = QFormer.initialise(config, 3, manager);
            LinearAdapter adapter = LinearAdapter.initialise("videoInterface.adapter", config.hiddenSize(), 24, manager, DataType.FLOAT32);
            QFormerImageInterface videoInterface = new QFormerImageInterface(encoder, qformer, adapter, 3);
            QFormerImageInterface imageInterface = new QFormerImageInterface(encoder, qformer, adapter);
            assertEquals("Video", videoInterface.tag());
            assertArrayEquals(new long[] {3, 49, 1280}, videoInterface.featureShape());
            assertTrue(videoInterface.parameters().stream().allMatch(p -> p.name().startsWith("videoInterface.")),
                    "parameters are named videoInterface.*");

            float[] pixels = videoInterface.preprocess(video);
            NDArray tokens = videoInterface.adapt(videoInterface.encode(
                    manager.create(pixels, new Shape(1, 3, 3, 224, 224))));
            assertEquals(new Shape(1, 3 * config.numQueryTokens(), 24), tokens.getShape());

            List<BufferedImage> sampled = VideoReader.read(video, 3).frames();
            int queries = config.numQueryTokens();
            for (int t = 0; t < 3; t++) {
                float[] framePixels = encoder.transforms().toChw(sampled.get(t));
                NDArray frameTokens = imageInterface.adapt(imageInterface.encode(
                        manager.create(framePixels, new Shape(1, 3, 224, 224))));
                float[] expected = frameTokens.toFloatArray();
                float[] actual = tokens.get(":, " + (t * queries) + ":" + ((t + 1) * queries) + ", :").toFloatArray();
                for (int i = 0; i < expected.length; i++) {
                    assertEquals(expected[i], actual[i], 1e-4, "frame " + t + " value " + i);
                }
            }
            // the frames really differ (the square moves), so the time-order check above is not vacuous
            float[] first = tokens.get(":, 0:" + queries + ", :").toFloatArray();
            float[] last = tokens.get(":, " + (2 * queries) + ":, :").toFloatArray();
            double difference = 0;
            for (int i = 0; i < first.length; i++) difference = Math.max(difference, Math.abs(first[i] - last[i]));
            assertTrue(difference > 1e-3, "first and last frame tokens differ: " + difference);
        }
    }

    @Test
    void aVideoWithFewerFramesThanRequestedIsRefusedNamingTheFile(@TempDir Path dir) throws Exception {
        Path video = dir.resolve("short.avi");
        Files.write(video, VideoWriter.mjpegAvi(movingSquare(2), 8, 0.9f));
        try (NDManager manager = NDManager.newBaseManager()) {
            EfficientNetLite0 encoder = EfficientNetLite0.load(RealWeights.require("efficientnet-lite0"), manager);
            var config = QFormerImageInterface.qformerConfig("tiny");
            QFormerImageInterface videoInterface = new QFormerImageInterface(encoder, QFormer.initialise(config, 3, manager),
                    LinearAdapter.initialise("x", config.hiddenSize(), 24, manager, DataType.FLOAT32), 5);
            Exception e = assertThrows(Exception.class, () -> videoInterface.preprocess(video));
            assertTrue(e.getMessage().contains("short.avi"), e.getMessage());
        }
    }

    @Test
    void alignVideoTrainsFromAVideoManifestAndAnswersAboutAVideo(@TempDir Path dir) throws Exception {
        xllm.data.SyntheticVideos.generate(dir.resolve("videos"), 2, 5, "train");
        Path manifest = dir.resolve("videos/train.jsonl");
        Path run = dir.resolve("run");
        xllm.train.StageConfig config = xllm.train.StageConfig.load(Path.of("recipes/stage2-video.yaml"), List.of(
                "model.llm=src/test/resources/fixtures/llm/tiny-llama", "model.size=tiny", "model.videoFrames=2",
                "initFrom=[]", "data.train=" + manifest, "data.eval=null", "steps=2", "batchSize=2",
                "checkpointEvery=2", "evalEvery=0", "featureCache=true", "schedule.warmupSteps=1", "output=" + run));
        try (NDManager manager = NDManager.newBaseManager();
             xllm.train.TrainingTask<?, ?> task = StageAssembly.assemble(config, manager)) {
            var result = new xllm.train.StageRunner(config, new java.io.PrintStream(java.io.OutputStream.nullOutputStream()))
                    .run(task, false);
            assertTrue(Double.isFinite(result.lastLoss()), "loss " + result.lastLoss());
        }
        Path clip;
        try (var files = Files.list(dir.resolve("videos/videos"))) {
            clip = files.sorted().findFirst().orElseThrow();
        }
        try (NDManager manager = NDManager.newBaseManager();
             MediaChat chat = MediaChat.open(run.resolve(xllm.train.CheckpointStore.FINAL), 3, manager)) {
            assertEquals("Video", chat.modality());
            var answer = chat.answer(clip, "Which way does the shape move?", xllm.llm.Generator.Options.greedy(3), null);
            assertTrue(answer.promptTokens() > 3 * QFormerImageInterface.qformerConfig("tiny").numQueryTokens(),
                    "3 frames x queries in the prompt: " + answer.promptTokens());
            assertThrows(IllegalArgumentException.class, () -> chat.requireModality("Image", clip));
        }
        // the same checkpoint as if trained before the CNN tokens had positions: refused, naming its config.json
        Path configJson = run.resolve(xllm.train.CheckpointStore.FINAL).resolve(xllm.train.Checkpoint.CONFIG);
        String recorded = Files.readString(configJson);
        assertTrue(recorded.contains(" + 2-D sinusoidal positions"), "the checkpoint records its features");
        Files.writeString(configJson, recorded.replace(" + 2-D sinusoidal positions", ""));
        try (NDManager manager = NDManager.newBaseManager()) {
            java.io.IOException e = assertThrows(java.io.IOException.class,
                    () -> MediaChat.open(run.resolve(xllm.train.CheckpointStore.FINAL), 3, manager));
            assertTrue(e.getMessage().contains("config.json") && e.getMessage().contains("positions"), e.getMessage());
        }
    }
}
