package xllm.server;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * How {@code ./xllm serve} runs: where it listens, who may call it, how much work it takes at once, and the limits
 * on what a request may carry.
 *
 * @param host                  the address to bind (loopback by default: nothing outside the machine reaches it)
 * @param port                  0 picks a free port
 * @param apiKey                when set, every /v1 and /metrics request needs {@code Authorization: Bearer KEY}
 * @param maxBatch              requests decoded together in one batch
 * @param queue                 requests that may wait beyond the running batch; more get 429
 * @param timeout               a request's limit from arrival to its last token
 * @param allowedMediaDomains   hosts whose http(s) media URLs are fetched (none: http(s) URLs are refused)
 * @param allowedLocalMediaPath the one directory file:// media URLs may read under (null: file:// is refused)
 * @param corsOrigin            the origin allowed to call from a browser page of another site (null: CORS off)
 * @param maxBodyBytes          the largest request body
 * @param limits                per-medium limits
 * @param logRequests           log each request's text too (by default only sizes and timings are logged)
 */
public record ServerOptions(String host, int port, String apiKey, int maxBatch, int queue, Duration timeout,
                            List<String> allowedMediaDomains, Path allowedLocalMediaPath, String corsOrigin,
                            long maxBodyBytes, MediaLimits limits, boolean logRequests) {

    public ServerOptions {
        if (maxBatch < 1) throw new IllegalArgumentException("--max-batch must be ≥ 1, got " + maxBatch);
        if (queue < 0) throw new IllegalArgumentException("--queue must be ≥ 0, got " + queue);
        if (port < 0 || port > 65535) throw new IllegalArgumentException("--port must be 0..65535, got " + port);
        allowedMediaDomains = allowedMediaDomains == null ? List.of() : List.copyOf(allowedMediaDomains);
    }

    /** Loopback, port 0 and the default limits: what tests start. */
    public static ServerOptions local() {
        return new ServerOptions("127.0.0.1", 0, null, 4, 16, Duration.ofMinutes(5), List.of(), null, null,
                64L << 20, MediaLimits.DEFAULTS, false);
    }

    public ServerOptions withApiKey(String key) {
        return new ServerOptions(host, port, key, maxBatch, queue, timeout, allowedMediaDomains, allowedLocalMediaPath,
                corsOrigin, maxBodyBytes, limits, logRequests);
    }

    public ServerOptions withWork(int batch, int waiting, Duration limit) {
        return new ServerOptions(host, port, apiKey, batch, waiting, limit, allowedMediaDomains, allowedLocalMediaPath,
                corsOrigin, maxBodyBytes, limits, logRequests);
    }

    public ServerOptions withMediaSources(List<String> domains, Path localDir) {
        return new ServerOptions(host, port, apiKey, maxBatch, queue, timeout, domains, localDir, corsOrigin,
                maxBodyBytes, limits, logRequests);
    }

    public ServerOptions withCors(String origin) {
        return new ServerOptions(host, port, apiKey, maxBatch, queue, timeout, allowedMediaDomains,
                allowedLocalMediaPath, origin, maxBodyBytes, limits, logRequests);
    }

    public ServerOptions withMaxBody(long bytes) {
        return new ServerOptions(host, port, apiKey, maxBatch, queue, timeout, allowedMediaDomains,
                allowedLocalMediaPath, corsOrigin, bytes, limits, logRequests);
    }

    /**
     * Limits on one request's content.
     *
     * @param maxMessages   messages per request
     * @param maxParts      content parts over all messages
     * @param maxMediaBytes the largest decoded image or audio file
     * @param maxVideoBytes the largest decoded video file
     * @param maxMedia      media files per request (history included)
     */
    public record MediaLimits(int maxMessages, int maxParts, long maxMediaBytes, long maxVideoBytes, int maxMedia) {
        public static final MediaLimits DEFAULTS = new MediaLimits(256, 512, 20L << 20, 48L << 20, 16);
    }
}
