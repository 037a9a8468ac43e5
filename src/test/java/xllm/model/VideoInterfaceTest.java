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
        RealWeights.require("efficientnet-lite0");
        var config = ImageInterface.qformerConfig("tiny");
        try (NDManager manager = NDManager.newBaseManager();
             VideoInterface videoInterface = VideoInterface.create("efficientnet-lite0", 3, config, null, 24, 3, manager);
             ImageInterface imageInterface = ImageInterface.create("efficientnet-lite0", config, null, 24, 3, manager)) {
            // same seed, same initialisation: the image interface is the video interface's per-frame path
            for (int i = 0; i < imageInterface.parameters().size(); i++) {
                assertArrayEquals(imageInterface.parameters().get(i).value().toFloatArray(),
                        videoInterface.parameters().get(i).value().toFloatArray(), 0f);
            }
            assertEquals(Modality.VIDEO, videoInterface.modality());
            assertTrue(videoInterface.parameters().stream().allMatch(p -> p.name().startsWith("videoInterface.")),
                    "parameters are named videoInterface.*");
            List<Features> encoded = videoInterface.encode(List.of(videoInterface.prepare(video)), manager);
            assertArrayEquals(new long[] {3, 49, 1280}, encoded.get(0).shape());
            NDArray tokens = videoInterface.adapt(encoded, manager).get(0);
            int queries = config.numQueryTokens();
            assertEquals(new Shape(3 * queries, 24), tokens.getShape());

            List<BufferedImage> sampled = VideoReader.read(video, 3).frames();
            for (int t = 0; t < 3; t++) {
                Path frame = dir.resolve("frame" + t + ".png");
                javax.imageio.ImageIO.write(sampled.get(t), "png", frame.toFile());
                NDArray frameTokens = imageInterface.adapt(imageInterface.encode(List.of(imageInterface.prepare(frame)),
                        manager), manager).get(0);
                float[] expected = frameTokens.toFloatArray();
                float[] actual = tokens.get((t * queries) + ":" + ((t + 1) * queries) + ", :").toFloatArray();
                for (int i = 0; i < expected.length; i++) {
                    assertEquals(expected[i], actual[i], 1e-4, "frame " + t + " value " + i);
                }
            }
            // the frames really differ (the square moves), so the time-order check above is not vacuous
            float[] first = tokens.get("0:" + queries + ", :").toFloatArray();
            float[] last = tokens.get((2 * queries) + ":, :").toFloatArray();
            double difference = 0;
            for (int i = 0; i < first.length; i++) difference = Math.max(difference, Math.abs(first[i] - last[i]));
            assertTrue(difference > 1e-3, "first and last frame tokens differ: " + difference);
        }
    }

    @Test
    void aVideoWithFewerFramesThanRequestedIsRefusedNamingTheFile(@TempDir Path dir) throws Exception {
        Path video = dir.resolve("short.avi");
        Files.write(video, VideoWriter.mjpegAvi(movingSquare(2), 8, 0.9f));
        try (NDManager manager = NDManager.newBaseManager();
             VideoInterface videoInterface = VideoInterface.create("random", 5, null, null, 24, 3, manager)) {
            Exception e = assertThrows(Exception.class, () -> videoInterface.prepare(video));
            assertTrue(e.getMessage().contains("short.avi"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> VideoInterface.create("random", 65, null, null, 24, 3, manager));
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
             xllm.train.TrainingTask<?, ?> task = xllm.train.StageAssembly.assemble(config, manager)) {
            var result = new xllm.train.StageRunner(config, new java.io.PrintStream(java.io.OutputStream.nullOutputStream()))
                    .run(task, false);
            assertTrue(Double.isFinite(result.lastLoss()), "loss " + result.lastLoss());
        }
        Path clip;
        try (var files = Files.list(dir.resolve("videos/videos"))) {
            clip = files.sorted().findFirst().orElseThrow();
        }
        Path checkpoint = run.resolve(xllm.train.CheckpointStore.FINAL);
        try (NDManager manager = NDManager.newBaseManager(); XLlm model = XLlm.load(checkpoint, 3, manager)) {
            assertEquals(java.util.Set.of(Modality.VIDEO), model.modalities());
            var answer = new Conversation(model).ask(java.util.Map.of(Modality.VIDEO, clip),
                    "Which way does the shape move?", xllm.llm.Generator.Options.greedy(3), null);
            assertTrue(answer.promptTokens() > 3 * ImageInterface.qformerConfig("tiny").numQueryTokens(),
                    "3 frames x queries in the prompt: " + answer.promptTokens());
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> model.interfaceOf(Modality.IMAGE));
            assertTrue(e.getMessage().contains("no image interface") && e.getMessage().contains("--video"), e.getMessage());
        }
        // the same checkpoint as if trained on image features without positions: refused, naming the field
        Path configJson = checkpoint.resolve(XLlm.CONFIG);
        String recorded = Files.readString(configJson);
        assertTrue(recorded.contains("\"positions\" : true"), recorded);
        Files.writeString(configJson, recorded.replace("\"positions\" : true", "\"positions\" : false"));
        try (NDManager manager = NDManager.newBaseManager()) {
            java.io.IOException e = assertThrows(java.io.IOException.class, () -> XLlm.load(checkpoint, manager));
            assertTrue(e.getMessage().startsWith(configJson + ": model.video.encoder.positions is recorded as false"),
                    e.getMessage());
        }
    }
}
