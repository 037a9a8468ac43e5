package xllm.serve;

import ai.djl.ndarray.NDManager;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import xllm.llm.ChatTemplate;
import xllm.llm.Generator;
import xllm.llm.LanguageModel;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/** {@code ./xllm generate}: one prompt in, only the completion out on stdout (logs on stderr), for scripts. */
@Command(name = "generate", mixinStandardHelpOptions = true,
        description = {"Generate one completion and print only it on stdout (progress and logs go to stderr).",
                "The prompt is wrapped in the model's chat template unless --raw is given."})
public final class GenerateCommand implements Callable<Integer> {

    @Mixin ModelOption modelOption;
    @Mixin SamplingOptions sampling;

    @Option(names = {"-p", "--prompt"}, description = "The prompt; '-' reads it from stdin. Required, except with "
            + "--audio, where leaving it out makes the speech itself the question.")
    String prompt;

    @Option(names = "--system", description = "System message (chat template only).")
    String system;

    @Option(names = "--raw", description = "Feed the prompt as plain text, without the chat template.")
    boolean raw;

    @Option(names = "--image", description = "An image for the question; --model must then be an X-LLM checkpoint "
            + "directory with an image interface. --image, --video and --audio combine in one prompt, in the paper's "
            + "order <Image>…</Image><Video>…</Video><Speech>…</Speech>Question: …")
    java.nio.file.Path image;

    @Option(names = "--video", description = "A video (MP4/H.264, AVI MJPEG) for a checkpoint with a video interface.")
    java.nio.file.Path video;

    @Option(names = "--audio", description = "A WAV for a checkpoint with a speech interface. Without --prompt the "
            + "speech is the question (asked about the --image or --video too, when given); with --prompt \"Please "
            + "faithfully recognize the speech.\" it transcribes, and with --image and \"Please faithfully recognize the "
            + "speech based on the image.\" the image is context for the transcription.")
    java.nio.file.Path audio;

    @Option(names = "--frames", description = "Frames sampled uniformly from the video (default: the checkpoint's; "
            + "the paper uses up to 10 at inference).")
    int frames;

    @Override
    public Integer call() throws Exception {
        Generator.Options options = sampling.toOptions(); // bad flags fail before a model is loaded
        if (prompt == null && audio == null) {
            throw new IllegalArgumentException("--prompt is required (it may be left out only with --audio)");
        }
        String text = prompt == null ? "" : prompt.equals("-") ? new String(System.in.readAllBytes(), StandardCharsets.UTF_8) : prompt;
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        java.util.Map<xllm.model.Modality, java.nio.file.Path> media = MediaOption.of(image, video, audio);
        if (frames != 0) xllm.model.VideoInterface.requireFrames(frames);
        if (!media.isEmpty()) {
            java.nio.file.Path checkpoint = xllm.hub.ModelStore.defaultStore().resolve(modelOption.model);
            if (!xllm.model.XLlm.isCheckpoint(checkpoint)) {
                throw new IllegalArgumentException(checkpoint + " is not an X-LLM checkpoint (config.json + "
                        + "model.safetensors + provenance.json); " + MediaOption.flags(media) + " need one, e.g. "
                        + "runs/<stage>/final");
            }
            try (NDManager manager = NDManager.newBaseManager();
                 xllm.model.XLlm model = xllm.model.XLlm.load(checkpoint, frames, manager)) {
                for (xllm.model.Modality m : media.keySet()) model.interfaceOf(m); // names what the checkpoint lacks
                new xllm.model.Conversation(model).ask(media, text, options, (row, delta) -> out.print(delta));
                out.println();
            }
            return 0;
        }
        try (NDManager manager = NDManager.newBaseManager();
             LanguageModel lm = modelOption.open(manager)) {
            long[] ids;
            if (raw) {
                ids = lm.textPrompt(text);
            } else {
                List<ChatTemplate.Message> messages = new ArrayList<>();
                if (system != null) messages.add(new ChatTemplate.Message("system", system));
                messages.add(new ChatTemplate.Message("user", text));
                ids = lm.chatPrompt(messages);
            }
            long start = System.nanoTime();
            Generator.Completion completion = lm.generator()
                    .generate(List.of(ids), options, (row, delta) -> out.print(delta)).get(0);
            out.println();
            double seconds = (System.nanoTime() - start) / 1e9;
            System.err.printf("%d prompt + %d generated tokens in %.2f s (%s)%n", ids.length,
                    completion.tokenIds().length, seconds, completion.finishReason().name().toLowerCase());
        }
        return 0;
    }
}
