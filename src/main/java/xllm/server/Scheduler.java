package xllm.server;

import xllm.llm.Generator;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Admission and the decode loop. At most {@code maxBatch + queue} requests are in the server at once (a permit is
 * taken before any media is fetched or encoded; beyond it a request gets 429). One decode thread runs a
 * continuously batched {@link Generator.Session}: between two decode steps, the requests that arrived (up to
 * {@code maxBatch} rows in all) are prefilled as a group and join the running batch, and every row leaves as soon as
 * it ends (end token, budget, timeout or its client's disconnect). The decoder reads its weights once per step for
 * all rows. A group whose prefill fails is retried one request at a time, so one bad request fails alone.
 */
final class Scheduler implements AutoCloseable {

    /** What the decode loop tells a request's thread. */
    sealed interface Event permits Delta, Done, Failed {}

    record Delta(String text) implements Event {}

    record Done(Generator.Completion completion) implements Event {}

    record Failed(Exception error) implements Event {}

    /** One admitted request: its prompt, options, and the events its thread reads; {@link #cancel} stops it. */
    static final class Job {
        final ServedModel.Prompt prompt;
        final Generator.Options options;
        final BlockingQueue<Event> events = new LinkedBlockingQueue<>();
        private volatile boolean cancelled;

        Job(ServedModel.Prompt prompt, Generator.Options options) {
            this.prompt = prompt;
            this.options = options.cancelledWhen(() -> cancelled);
        }

        void cancel() {
            cancelled = true;
        }

        boolean cancelled() {
            return cancelled;
        }
    }

    private final ServedModel model;
    private final int maxBatch;
    private final int bound;
    private final Semaphore permits;
    private final BlockingQueue<Job> waiting = new LinkedBlockingQueue<>();
    private final Metrics metrics;
    private final Thread loop;
    private volatile boolean closed;

    Scheduler(ServedModel model, int maxBatch, int queue, Metrics metrics) {
        this.model = model;
        this.maxBatch = maxBatch;
        this.bound = maxBatch + queue;
        this.permits = new Semaphore(bound);
        this.metrics = metrics;
        this.loop = new Thread(this::run, "xllm-decode");
        loop.setDaemon(true);
        loop.start();
    }

    /**
     * Takes a place for a request, or refuses it with 429 when {@code maxBatch + queue} are already in. The place is
     * given back once, by whichever comes first: the handler just before it completes the response (so that a client
     * which has read the whole answer never finds its own place still taken), or the handler's end.
     */
    Place admit() throws ApiException {
        if (!permits.tryAcquire()) {
            metrics.rejected.incrementAndGet();
            throw new ApiException(429, "queue_full", null, "the server is busy: " + bound + " requests are being "
                    + "served or waiting; retry later");
        }
        return new Place();
    }

    /** An admitted request's place; {@link #close} gives it back, once. */
    final class Place implements AutoCloseable {
        private final AtomicBoolean held = new AtomicBoolean(true);

        @Override
        public void close() {
            if (held.getAndSet(false)) permits.release();
        }
    }

    /** Queues an admitted request for the decode loop. */
    Job submit(ServedModel.Prompt prompt, Generator.Options options) {
        Job job = new Job(prompt, options);
        metrics.queueDepth.incrementAndGet();
        waiting.add(job);
        return job;
    }

    int bound() {
        return bound;
    }

    private void run() {
        List<Job> arrived = new ArrayList<>(); // taken from the queue, not yet running
        int deferredAt = -1;                   // rows running when the next group did not fit (-1: none deferred)
        try (Generator.Session<Job> session = model.session()) {
            while (!closed) {
                try {
                    if (session.size() == 0 && arrived.isEmpty()) {
                        Job first = waiting.poll(200, TimeUnit.MILLISECONDS);
                        if (first == null) continue;
                        arrived.add(first);
                    }
                } catch (InterruptedException e) {
                    return;
                }
                waiting.drainTo(arrived, Math.max(0, maxBatch - session.size() - arrived.size()));
                for (Job job : arrived) {
                    if (job.cancelled()) finish(job, new Done(new Generator.Completion(new long[0], "",
                            Generator.FinishReason.CANCELLED, 0)));
                }
                arrived.removeIf(Job::cancelled);
                if (deferredAt < 0 || session.size() < deferredAt) {
                    deferredAt = join(session, arrived);
                }
                if (session.size() > 0) step(session);
                metrics.running.set(session.size());
            }
        } finally {
            metrics.running.set(0);
        }
    }

    /**
     * Prefills as many arrived requests as there are free rows and adds them to the session. Returns -1, or the
     * session's size when the group would take context that running rows need (it waits until a row ends).
     */
    private int join(Generator.Session<Job> session, List<Job> arrived) {
        int free = maxBatch - session.size();
        if (free <= 0 || arrived.isEmpty()) return -1;
        List<Job> group = new ArrayList<>(arrived.subList(0, Math.min(free, arrived.size())));
        try {
            if (!add(session, group)) return session.size();
            arrived.removeAll(group);
            metrics.batches.incrementAndGet();
            metrics.batchedRequests.addAndGet(group.size());
        } catch (Exception | OutOfMemoryError e) {
            arrived.removeAll(group);
            // one bad request (a prompt over the context, corrupt media) must not fail the others: each runs alone
            for (Job job : group) {
                if (group.size() == 1) {
                    finish(job, new Failed(e instanceof Exception x ? x : new IllegalStateException("out of memory")));
                    continue;
                }
                try {
                    if (add(session, List.of(job))) {
                        metrics.batches.incrementAndGet();
                        metrics.batchedRequests.incrementAndGet();
                    } else {
                        arrived.add(0, job);
                    }
                } catch (Exception alone) {
                    finish(job, new Failed(alone));
                }
            }
        }
        return -1;
    }

    /** Prefills {@code group} into the session, unless it does not fit beside the running rows (false). */
    private boolean add(Generator.Session<Job> session, List<Job> group) {
        try (var scope = model.newScope()) {
            Generator.Prompts prompts = model.prompts(group.stream().map(j -> j.prompt).toList(), scope);
            List<Generator.Options> options = group.stream().map(j -> j.options).toList();
            if (!session.fits((int) prompts.embeddings().getShape().get(1), options)) return false;
            List<Generator.StreamListener> listeners = group.stream()
                    .map(job -> (Generator.StreamListener) (row, delta) -> job.events.add(new Delta(delta))).toList();
            session.add(prompts, group, options, listeners);
            metrics.queueDepth.addAndGet(-group.size());
            return true;
        }
    }

    /** One decode step; the requests that ended get their completion. A failed step fails every running request. */
    private void step(Generator.Session<Job> session) {
        try {
            for (Generator.Ended<Job> ended : session.step()) ended.key().events.add(new Done(ended.completion()));
        } catch (Exception | OutOfMemoryError e) {
            Exception error = e instanceof Exception x ? x : new IllegalStateException("out of memory in the decode step");
            for (Job job : session.abandon()) job.events.add(new Failed(error));
        }
    }

    /** Ends a request that never joined the session. */
    private void finish(Job job, Event event) {
        metrics.queueDepth.decrementAndGet();
        job.events.add(event);
    }

    @Override
    public void close() {
        closed = true;
        loop.interrupt();
        try {
            loop.join(10_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
