package xllm.serve;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import xllm.server.ServerOptions;
import xllm.server.XllmServer;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.Callable;

/** {@code ./xllm serve}: the OpenAI-compatible API and the web page, for an X-LLM checkpoint or a text LLM. */
@Command(name = "serve", mixinStandardHelpOptions = true,
        description = {"Serve a model over HTTP: POST /v1/chat/completions (OpenAI schema; content parts text, "
                + "image_url, input_audio (WAV) and video_url, as data: URLs; stream: true sends server-sent events), "
                + "GET /v1/models, /health, /metrics (Prometheus), and the chat page at /.",
                "Binds to 127.0.0.1 unless --host says otherwise. http(s):// and file:// media URLs are refused unless "
                        + "--allowed-media-domains / --allowed-local-media-path allow them.",
                "Prints 'xllm serve: listening on URL (model ID)' on stdout when ready; Ctrl-C stops it."})
public final class ServeCommand implements Callable<Integer> {

    @Mixin ModelOption modelOption;

    @Option(names = "--host", defaultValue = "127.0.0.1", description = "Address to bind (default ${DEFAULT-VALUE}; "
            + "0.0.0.0 exposes the server to the network).")
    String host;

    @Option(names = "--port", defaultValue = "8080", description = "Port (default ${DEFAULT-VALUE}; 0 picks a free one).")
    int port;

    @Option(names = "--api-key", description = "Require 'Authorization: Bearer KEY' on /v1 and /metrics "
            + "(default: env XLLM_API_KEY, else none).")
    String apiKey;

    @Option(names = "--max-batch", defaultValue = "16", description = "Requests decoded together: new ones join the "
            + "running batch between steps (default ${DEFAULT-VALUE}).")
    int maxBatch;

    @Option(names = "--queue", defaultValue = "16", description = "Requests that may wait beyond the running batch; "
            + "more get 429 with Retry-After (default ${DEFAULT-VALUE}).")
    int queue;

    @Option(names = "--timeout", defaultValue = "300", description = "Seconds a request may take from arrival to its "
            + "last token; then 504 (or an error event in a stream) (default ${DEFAULT-VALUE}).")
    int timeoutSeconds;

    @Option(names = "--allowed-media-domains", split = ",", description = "Hosts whose http(s) media URLs may be "
            + "fetched (exact names; only public addresses; redirects are not followed). Default: none.")
    List<String> domains;

    @Option(names = "--allowed-local-media-path", description = "The directory file:// media URLs may read under. "
            + "Default: none (file:// refused).")
    Path localMedia;

    @Option(names = "--cors-origin", description = "Allow browser pages of this origin (or *) to call the API. Default: "
            + "CORS off.")
    String corsOrigin;

    @Option(names = "--max-body-mb", defaultValue = "64", description = "Largest request body in MiB; larger get 413 "
            + "(default ${DEFAULT-VALUE}).")
    int maxBodyMb;

    @Option(names = "--log-requests", description = "Also log each request's last message text (by default only "
            + "method, path, status, sizes and timings are logged, to stderr).")
    boolean logRequests;

    @Override
    public Integer call() throws Exception {
        String key = apiKey != null ? apiKey : System.getenv("XLLM_API_KEY");
        ServerOptions options = new ServerOptions(host, port, key == null || key.isBlank() ? null : key, maxBatch, queue,
                Duration.ofSeconds(timeoutSeconds), domains, localMedia, corsOrigin, (long) maxBodyMb << 20,
                ServerOptions.MediaLimits.DEFAULTS, logRequests);
        XllmServer server = XllmServer.start(modelOption.model, options);
        Runtime.getRuntime().addShutdownHook(new Thread(server::close, "xllm-serve-stop"));
        System.out.println("xllm serve: listening on " + server.uri() + " (model " + server.modelId() + ")");
        System.out.flush();
        server.join();
        return 0;
    }
}
