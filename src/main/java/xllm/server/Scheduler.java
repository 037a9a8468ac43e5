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
 * taken before any media is fetched or encoded; beyond it a request gets 429). One decode thread takes every waiting
 * request, up to {@code maxBatch}, as one batch and generates for all of them together (the decoder reads its
 * weights once per step for the whole batch); each row stops on its own end token, budget, timeout or its client's
 * disconnect. A batch that fails is retried one request at a time, so one bad request fails alone. Requests that
 * arrive while a batch runs wait for the next one.
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
        private boolean streamed;    // the decode thread gave it text already (a failed batch cannot rerun it)

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
        while (!closed) {
            List<Job> batch = new ArrayList<>();
            try {
                Job first = waiting.poll(200, TimeUnit.MILLISECONDS);
                if (first == null) continue;
                batch.add(first);
            } catch (InterruptedException e) {
                return;
            }
            waiting.drainTo(batch, maxBatch - 1);
            metrics.queueDepth.addAndGet(-batch.size());
            List<Job> live = new ArrayList<>();
            for (Job job : batch) {
                if (job.cancelled()) {
                    job.events.add(new Done(new Generator.Completion(new long[0], "", Generator.FinishReason.CANCELLED, 0)));
                } else {
                    live.add(job);
                }
            }
            if (live.isEmpty()) continue;
            metrics.running.set(live.size());
            metrics.batches.incrementAndGet();
            metrics.batchedRequests.addAndGet(live.size());
            try {
                decode(live);
            } catch (Exception e) {
                if (live.size() == 1) {
                    live.get(0).events.add(new Failed(e));
                } else {
                    // One bad request (a prompt over the context, say) must not fail the others: those that got no
                    // text yet run again alone.
                    for (Job job : live) {
                        if (job.streamed) {
                            job.events.add(new Failed(e));
                            continue;
                        }
                        try {
                            decode(List.of(job));
                        } catch (Exception alone) {
                            job.events.add(new Failed(alone));
                        }
                    }
                }
            } catch (OutOfMemoryError e) {
                for (Job job : live) job.events.add(new Failed(new IllegalStateException("out of memory in this batch")));
            } finally {
                metrics.running.set(0);
            }
        }
    }

    private void decode(List<Job> jobs) {
        List<Generator.Completion> done = model.generate(jobs.stream().map(j -> j.prompt).toList(),
                jobs.stream().map(j -> j.options).toList(), (row, delta) -> {
                    Job job = jobs.get(row);
                    job.streamed = true;
                    job.events.add(new Delta(delta));
                });
        for (int i = 0; i < jobs.size(); i++) jobs.get(i).events.add(new Done(done.get(i)));
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
