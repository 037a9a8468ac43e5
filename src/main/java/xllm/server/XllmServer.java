package xllm.server;

import ai.djl.ndarray.NDManager;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.io.Content;
import org.eclipse.jetty.server.HttpConfiguration;
import org.eclipse.jetty.server.HttpConnectionFactory;
import org.eclipse.jetty.server.NetworkConnectionLimit;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.server.handler.ErrorHandler;
import org.eclipse.jetty.util.thread.QueuedThreadPool;

import java.io.IOException;
import java.net.URI;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

/**
 * {@code ./xllm serve}: an OpenAI-compatible HTTP server for an X-LLM checkpoint or a text LLM, on Jetty. One decode
 * thread batches requests ({@link Scheduler}); one encoder thread runs the frozen media encoders beside it; HTTP
 * threads parse, fetch media and stream answers. Connections are capped and idle ones closed, so slow clients
 * cannot exhaust the server.
 */
public final class XllmServer implements AutoCloseable {

    /** Open connections at once; more wait in the accept queue. */
    static final int MAX_CONNECTIONS = 512;
    /** A connection that sends or reads nothing for this long is closed (slow-loris clients included). */
    static final long IDLE_TIMEOUT_MS = 30_000;

    private final NDManager manager;
    private final ServedModel model;
    private final Scheduler scheduler;
    private final ExecutorService encoder;
    private final Metrics metrics = new Metrics();
    private final Server server;
    private final ServerConnector connector;

    private XllmServer(String modelName, ServerOptions options, MediaFetcher fetcher) throws Exception {
        manager = NDManager.newBaseManager();
        try {
            model = ServedModel.open(modelName, manager);
        } catch (IOException | RuntimeException e) {
            manager.close();
            throw e;
        }
        scheduler = new Scheduler(model, options.maxBatch(), options.queue(), metrics);
        encoder = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "xllm-encoder");
            t.setDaemon(true);
            return t;
        });
        QueuedThreadPool threads = new QueuedThreadPool(Math.max(64, 2 * scheduler.bound() + 32), 8);
        threads.setName("xllm-http");
        server = new Server(threads);
        HttpConfiguration http = new HttpConfiguration();
        http.setSendServerVersion(false);
        http.setSendDateHeader(true);
        http.setRequestHeaderSize(16 * 1024);
        http.setMinRequestDataRate(1024);           // a body trickled slower than 1 KiB/s is cut off
        connector = new ServerConnector(server, new HttpConnectionFactory(http));
        connector.setHost(options.host());
        connector.setPort(options.port());
        connector.setIdleTimeout(IDLE_TIMEOUT_MS);
        server.addConnector(connector);
        server.addBean(new NetworkConnectionLimit(MAX_CONNECTIONS, server));
        ApiHandler handler = new ApiHandler(model, scheduler, options, fetcher, encoder, metrics);
        server.setHandler(handler);
        server.setErrorHandler((request, response, callback) -> { // Jetty's own refusals (bad request line, …) as JSON
            int status = response.getStatus() > 0 ? response.getStatus() : 500;
            Object message = request.getAttribute(ErrorHandler.ERROR_MESSAGE);
            ApiException e = new ApiException(status, "http_" + status, null, message == null ? "HTTP " + status
                    : message.toString());
            response.getHeaders().put(HttpHeader.CONTENT_TYPE, "application/json");
            Content.Sink.write(response, true, handler.errorBody(e).toString(), callback);
            return true;
        });
    }

    /** Loads the model and starts listening; {@link #uri()} is where. */
    public static XllmServer start(String model, ServerOptions options) throws Exception {
        return start(model, options, new MediaFetcher(options.allowedMediaDomains(), options.allowedLocalMediaPath()));
    }

    static XllmServer start(String model, ServerOptions options, MediaFetcher fetcher) throws Exception {
        XllmServer s = new XllmServer(model, options, fetcher);
        try {
            s.server.start();
        } catch (Exception e) {
            s.close();
            throw e;
        }
        return s;
    }

    public int port() {
        return connector.getLocalPort();
    }

    public URI uri() {
        String host = connector.getHost().contains(":") ? "[" + connector.getHost() + "]" : connector.getHost();
        return URI.create("http://" + host + ":" + port());
    }

    public String modelId() {
        return model.id();
    }

    /** Blocks until the server stops. */
    public void join() throws InterruptedException {
        server.join();
    }

    @Override
    public void close() {
        try {
            server.stop();
        } catch (Exception e) {
            System.err.println("stopping the HTTP server: " + e);
        }
        scheduler.close();
        encoder.shutdownNow();
        try {
            encoder.awaitTermination(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        model.close();
        manager.close();
    }
}
