package xllm.server;

import java.util.Arrays;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The server's counters and gauges, written as Prometheus text for {@code GET /metrics}: queue depth, active streams,
 * requests by status, tokens, cancellations, rejections and time to first token.
 */
final class Metrics {

    final AtomicLong queueDepth = new AtomicLong();
    final AtomicLong running = new AtomicLong();
    final AtomicLong activeStreams = new AtomicLong();
    final AtomicLong promptTokens = new AtomicLong();
    final AtomicLong completionTokens = new AtomicLong();
    final AtomicLong cancelled = new AtomicLong();
    final AtomicLong timedOut = new AtomicLong();
    final AtomicLong rejected = new AtomicLong();
    final AtomicLong batches = new AtomicLong();
    final AtomicLong batchedRequests = new AtomicLong();
    private final Map<Integer, AtomicLong> byStatus = new TreeMap<>();
    /** The last TTFT_WINDOW times to first token, for the quantiles; the sum and count cover all. */
    private static final int TTFT_WINDOW = 1024;
    private final double[] ttft = new double[TTFT_WINDOW];
    private long ttftCount;
    private double ttftSum;

    void status(int code) {
        synchronized (byStatus) {
            byStatus.computeIfAbsent(code, c -> new AtomicLong()).incrementAndGet();
        }
    }

    synchronized void timeToFirstToken(double seconds) {
        ttft[(int) (ttftCount % TTFT_WINDOW)] = seconds;
        ttftCount++;
        ttftSum += seconds;
    }

    /** The Prometheus text exposition. */
    String render() {
        StringBuilder out = new StringBuilder();
        gauge(out, "xllm_queue_depth", "Requests admitted and waiting for the decode loop.", queueDepth.get());
        gauge(out, "xllm_running_requests", "Requests in the running batch.", running.get());
        gauge(out, "xllm_active_streams", "Open server-sent-event responses.", activeStreams.get());
        out.append("# HELP xllm_requests_total Finished HTTP requests by status code.\n# TYPE xllm_requests_total counter\n");
        synchronized (byStatus) {
            for (var e : byStatus.entrySet()) {
                out.append("xllm_requests_total{code=\"").append(e.getKey()).append("\"} ").append(e.getValue().get()).append('\n');
            }
        }
        counter(out, "xllm_prompt_tokens_total", "Prompt positions read (media embeddings included).", promptTokens.get());
        counter(out, "xllm_completion_tokens_total", "Tokens generated.", completionTokens.get());
        counter(out, "xllm_cancelled_total", "Generations stopped because the client went away.", cancelled.get());
        counter(out, "xllm_timeouts_total", "Requests stopped by the request timeout.", timedOut.get());
        counter(out, "xllm_rejected_total", "Requests refused with 429 because the queue was full.", rejected.get());
        counter(out, "xllm_batches_total", "Prefill groups that joined the running batch.", batches.get());
        counter(out, "xllm_batched_requests_total", "Requests that joined the running batch.", batchedRequests.get());
        synchronized (this) {
            int n = (int) Math.min(ttftCount, TTFT_WINDOW);
            double[] window = Arrays.copyOf(ttft, n);
            Arrays.sort(window);
            out.append("# HELP xllm_time_to_first_token_seconds From a request's arrival to its first generated text.\n");
            out.append("# TYPE xllm_time_to_first_token_seconds summary\n");
            for (double q : new double[] {0.5, 0.95, 0.99}) {
                double v = n == 0 ? Double.NaN : window[Math.min(n - 1, (int) Math.ceil(q * n) - 1)];
                out.append("xllm_time_to_first_token_seconds{quantile=\"").append(q).append("\"} ").append(v).append('\n');
            }
            out.append("xllm_time_to_first_token_seconds_sum ").append(ttftSum).append('\n');
            out.append("xllm_time_to_first_token_seconds_count ").append(ttftCount).append('\n');
        }
        return out.toString();
    }

    private static void gauge(StringBuilder out, String name, String help, long value) {
        out.append("# HELP ").append(name).append(' ').append(help).append("\n# TYPE ").append(name).append(" gauge\n")
                .append(name).append(' ').append(value).append('\n');
    }

    private static void counter(StringBuilder out, String name, String help, long value) {
        out.append("# HELP ").append(name).append(' ').append(help).append("\n# TYPE ").append(name).append(" counter\n")
                .append(name).append(' ').append(value).append('\n');
    }
}
