package xllm.train;

import xllm.tensor.ParameterAssignment;

import xllm.data.ProgressBar;

import xllm.tensor.TrainableParameter;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import xllm.tensor.HostTensor;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * Runs one training stage from its {@link StageConfig}: the same loop for every stage (DESIGN.md §4 "Recipes").
 *
 * <p>Steps: (1) select the trainable parameters by the recipe's globs — everything else stays frozen and never
 * requires a gradient, while gradients still flow through the frozen parts; (2) initialise from {@code initFrom}
 * or resume from the run's latest checkpoint; (3) loop: micro-batches prepared on a background thread in a
 * seed-determined order, forward + backward inside one {@link GradientCollector}, global-norm clipping, AdamW with
 * the recipe's schedule; metrics JSONL, progress bar, evaluation, atomic checkpoints, loss-curve PNG. A NaN/Inf loss
 * stops the run before the optimiser touches the parameters, naming the last good checkpoint.
 *
 * <p>Exact resume: data order is a function of (seed, epoch), augmentation seeds of (seed, micro-batch index), the
 * learning rate of the step, and checkpoints hold parameters and AdamW moments bit for bit; so 10 + resume + 10
 * steps equal 20 straight ({@code StageRunnerTest}).
 */
public final class StageRunner {

    public record Result(long steps, double lastLoss, Path checkpoint, long trainableParameters) {}

    private static final ObjectMapper JSON = new ObjectMapper();

    private final StageConfig config;
    private final PrintStream log;

    public StageRunner(StageConfig config, PrintStream log) {
        this.config = config;
        this.log = log;
    }

    public <S, P> Result run(TrainingTask<S, P> task, boolean resume) throws IOException, InterruptedException {
        if (config.precision() == StageConfig.Precision.BF16) {
            // DJL 0.36's CPU engine aborts the JVM when it creates a BF16 array; CPU training runs in fp32.
            throw new IllegalArgumentException(config.recipe() + ": precision: bf16 is not supported by the CPU engine "
                    + "(DJL 0.36 aborts creating BF16 arrays); use fp32");
        }
        config.prepareOutput(); // an unwritable run dir fails now, not at the first checkpoint
        // step 1: freeze everything, unfreeze what the globs select
        Map<String, TrainableParameter> byName = new LinkedHashMap<>();
        for (TrainableParameter p : task.parameters()) byName.put(p.name(), p);
        List<String> selected = config.validateTrainable(byName.keySet());
        Set<String> selectedNames = new HashSet<>(selected);
        List<TrainableParameter> trainable = new ArrayList<>();
        long count = 0;
        for (TrainableParameter p : byName.values()) {
            if (selectedNames.contains(p.name())) {
                trainable.add(p);
                count += p.value().size();
            }
        }
        log.printf("%s: %,d trainable parameters in %d tensors (%d frozen tensors)%n", config.stage().id(), count,
                trainable.size(), byName.size() - trainable.size());

        List<S> samples = task.trainSamples();
        int batchSize = config.batchSize();
        int accumulation = config.gradientAccumulation();
        long microPerEpoch = Math.max(1, samples.size() / batchSize); // a last partial batch is dropped, as drop_last
        long totalSteps = config.steps() != null ? config.steps()
                : Math.max(1, config.epochs() * microPerEpoch / accumulation);
        requireWarmupWithin(totalSteps, microPerEpoch);
        LrSchedule schedule = totalSteps == 0 ? null : schedule(totalSteps); // steps 0: nothing to schedule
        Path runDir = config.output();
        Files.createDirectories(runDir);
        CheckpointStore store = new CheckpointStore(runDir, config.keepCheckpoints());

        // step 2: initialisation or resume
        long step = 0;
        StageConfig.Optimizer optimizerConfig = config.optimizer();
        try (AdamW optimizer = new AdamW(trainable, new AdamW.Config(optimizerConfig.beta1(), optimizerConfig.beta2(),
                optimizerConfig.epsilon(), optimizerConfig.weightDecay()))) {
            Optional<Path> latest = resume ? store.latest() : Optional.empty();
            if (resume && latest.isEmpty()) log.println("no checkpoint in " + store.directory() + ": starting fresh");
            if (latest.isPresent()) {
                Checkpoint checkpoint = Checkpoint.load(latest.get());
                ParameterAssignment.assign(byName, checkpoint.model(), Map.of(), latest.get(), selectedNames);
                try (NDManager stateManager = NDManager.newBaseManager()) {
                    Map<String, NDArray> state = new LinkedHashMap<>();
                    checkpoint.optimizer().forEach((k, v) -> state.put(k, v.toNDArray(stateManager)));
                    optimizer.loadState(state);
                }
                step = checkpoint.trainerState().step();
                log.printf("resumed from %s at step %d%n", latest.get(), step);
            } else {
                for (Path init : config.initFrom()) {
                    Map<String, HostTensor> tensors = new LinkedHashMap<>(Checkpoint.load(init).model());
                    int skipped = skip(tensors, config.initSkip());
                    ParameterAssignment.assign(byName, tensors, config.initRename(), init, Set.of());
                    if (skipped > 0) log.printf("%s: %d tensors left out by initSkip%n", init, skipped);
                    log.println("initialised from " + init);
                }
            }
            // parameters are written above while no gradient is attached; from here on only the selected ones train
            for (TrainableParameter p : byName.values()) p.value().setRequiresGradient(selectedNames.contains(p.name()));
            MetricsLog metrics = step == 0 ? MetricsLog.start(MetricsLog.in(runDir)) : MetricsLog.resume(MetricsLog.in(runDir), step);
            ProgressBar progress = ProgressBar.stderr(totalSteps);
            progress.start(step);
            Path lastCheckpoint = latest.orElse(null);
            double lastLoss = Double.NaN;
            long firstMicro = step * accumulation;
            long microBatches = (totalSteps - step) * accumulation;
            BlockingQueue<Object> queue = new ArrayBlockingQueue<>(4);
            Thread loader = startLoader(task, samples, firstMicro, microBatches, microPerEpoch, queue);
            try (metrics) {
                // step 3: the loop
                while (step < totalSteps) {
                    long start = System.nanoTime();
                    double learningRate = schedule.at(step);
                    double loss = 0;
                    for (int micro = 0; micro < accumulation; micro++) {
                        Object item = queue.take();
                        if (item instanceof Throwable t) throw new IOException("data loading failed: " + t.getMessage(), t);
                        @SuppressWarnings("unchecked") P batch = (P) item;
                        try (NDManager scope = NDManager.newBaseManager();
                             GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                            // a divisor tensor owned by the scope: div(Number) would free it before backward reads it
                            NDArray microLoss = task.loss(batch, scope).div(scope.create((float) accumulation));
                            collector.backward(microLoss);
                            loss += microLoss.getFloat();
                        }
                    }
                    if (!Double.isFinite(loss)) {
                        throw new IllegalStateException(String.format("loss is %s at step %d; parameters left as they were "
                                + "after step %d; last good checkpoint: %s", loss, step, step - 1,
                                lastCheckpoint == null ? "none" : lastCheckpoint));
                    }
                    double gradientNorm = optimizer.clipGradientNorm(optimizerConfig.maxGradNorm());
                    if (!Double.isFinite(gradientNorm)) {
                        throw new IllegalStateException(String.format("gradient norm is %s at step %d (loss %.4f); "
                                + "parameters left as they were after step %d; last good checkpoint: %s", gradientNorm,
                                step, loss, step - 1, lastCheckpoint == null ? "none" : lastCheckpoint));
                    }
                    optimizer.step(learningRate);
                    optimizer.zeroGradients();
                    step++;
                    lastLoss = loss;
                    double seconds = (System.nanoTime() - start) / 1e9;
                    Map<String, Object> record = new LinkedHashMap<>();
                    record.put("loss", loss);
                    record.put("lr", learningRate);
                    task.takeLossTerms().forEach((name, value) -> record.put("loss_" + name, value));
                    record.put("grad_norm", gradientNorm);
                    record.put("samples_per_s", batchSize * accumulation / seconds);
                    record.put("rss_mib", residentMib());
                    if (config.evalEvery() > 0 && step % config.evalEvery() == 0 || step == totalSteps) {
                        Double evalLoss = evaluate(task);
                        if (evalLoss != null) record.put("eval_loss", evalLoss);
                        task.takeLossTerms().forEach((name, value) -> record.put("eval_loss_" + name, value));
                    }
                    metrics.log(step, record);
                    progress.update(step, loss, learningRate, (long) batchSize * accumulation);
                    if (config.checkpointEvery() > 0 && step % config.checkpointEvery() == 0 || step == totalSteps) {
                        lastCheckpoint = save(store, task, byName, trainable, optimizer, step, loss);
                        LossCurvePlot.write(metrics.file(), runDir.resolve("loss.png"));
                    }
                }
            } finally {
                loader.interrupt();
                progress.finish();
            }
            if (totalSteps == 0) { // steps: 0 composes: the initialised model is the result
                lastCheckpoint = save(store, task, byName, trainable, optimizer, 0, Double.NaN);
                log.printf("%s: steps 0: wrote the model assembled from %s untrained%n", config.stage().id(),
                        config.initFrom());
            }
            if (step == totalSteps && lastCheckpoint != null) store.markFinal(lastCheckpoint);
            log.printf("%s: %d steps, last loss %.4f, checkpoint %s (also %s), curves %s%n", config.stage().id(), step,
                    lastLoss, lastCheckpoint, runDir.resolve(CheckpointStore.FINAL), runDir.resolve("loss.png"));
            return new Result(step, lastLoss, lastCheckpoint, count);
        }
    }

    /** Resident set of this process (VmRSS) in MiB, so memory growth shows in the metrics; NaN off Linux. */
    static double residentMib() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmRSS:")) return Long.parseLong(line.replaceAll("\\D", "")) / 1024.0;
            }
        } catch (IOException | NumberFormatException e) {
            return Double.NaN;
        }
        return Double.NaN;
    }

    /** Micro-batch {@code index} of the run covers positions [index·B, index·B + B) of the epoch's seeded order. */
    static List<Integer> microBatch(long index, int sampleCount, int batchSize, long microPerEpoch, long seed) {
        long epoch = index / microPerEpoch;
        int offset = (int) (index % microPerEpoch) * batchSize;
        List<Integer> order = new ArrayList<>();
        for (int i = 0; i < sampleCount; i++) order.add(i);
        Collections.shuffle(order, new Random(seed * 1_000_003L + epoch));
        return order.subList(offset, offset + batchSize);
    }

    private <S, P> Thread startLoader(TrainingTask<S, P> task, List<S> samples, long firstMicro, long count,
                                      long microPerEpoch, BlockingQueue<Object> queue) {
        Thread thread = new Thread(() -> {
            try {
                for (long i = firstMicro; i < firstMicro + count; i++) {
                    List<S> batch = new ArrayList<>();
                    for (int index : microBatch(i, samples.size(), config.batchSize(), microPerEpoch, config.seed())) {
                        batch.add(samples.get(index));
                    }
                    queue.put(task.prepare(batch, true, config.seed() * 7_919L + i));
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } catch (Throwable t) {
                queue.offer(t);
            }
        }, "xllm-data-loader");
        thread.setDaemon(true);
        thread.start();
        return thread;
    }

    private <S, P> Double evaluate(TrainingTask<S, P> task) throws IOException {
        List<S> eval = task.evalSamples();
        if (eval.isEmpty()) return null;
        double total = 0;
        int batches = 0;
        for (int i = 0; i < eval.size(); i += config.batchSize()) {
            P batch = task.prepare(eval.subList(i, Math.min(eval.size(), i + config.batchSize())), false, 0);
            try (NDManager scope = NDManager.newBaseManager()) {
                total += task.loss(batch, scope).getFloat();
                batches++;
            }
        }
        return total / batches;
    }

    private <S, P> Path save(CheckpointStore store, TrainingTask<S, P> task, Map<String, TrainableParameter> all,
                             List<TrainableParameter> trainable, AdamW optimizer, long step, double loss) throws IOException {
        // every parameter of the assembled model, trained in this stage or not (stage 3 trains the adapters; its
        // checkpoint still holds the Q-Formers and the C-Former it started from), so one directory is the whole model
        Map<String, NDArray> model = new LinkedHashMap<>();
        for (TrainableParameter p : all.values()) model.put(p.name(), p.value());
        Map<String, NDArray> state = optimizer.state();
        try {
            ObjectNode configJson = JSON.createObjectNode();
            configJson.set("model", task.describe());
            List<Path> manifests = new ArrayList<>();
            manifests.add(config.data().train());
            if (config.data().eval() != null) manifests.add(config.data().eval());
            ObjectNode provenance = CheckpointStore.provenance(config.stage().id(), manifests,
                    Double.isNaN(loss) ? Map.of() : Map.of("loss", loss));
            provenance.put("recipe", config.toYaml()); // how it was trained; config.json records what it is
            TrainerState trainerState = new TrainerState(step, step * config.gradientAccumulation() * config.batchSize()
                    / Math.max(1, task.trainSamples().size()), step * config.gradientAccumulation(), config.seed(),
                    "derived from seed and micro-batch index", loss, Map.of());
            return store.save(step, configJson, model, state, trainerState, provenance);
        } finally {
            state.values().forEach(NDArray::close);
        }
    }

    /** Removes the tensors whose names match one of {@code globs}; returns how many. */
    public static int skip(Map<String, HostTensor> tensors, List<String> globs) {
        List<ParameterGlob> compiled = globs.stream().map(ParameterGlob::compile).toList();
        int before = tensors.size();
        tensors.keySet().removeIf(name -> compiled.stream().anyMatch(glob -> glob.matches(name)));
        return before - tensors.size();
    }

    /** With epochs the run's length is known only now; StageConfig checks a recipe that gives steps at load. */
    private void requireWarmupWithin(long totalSteps, long microPerEpoch) {
        long warmupSteps = config.schedule().warmupSteps();
        if (warmupSteps < totalSteps || totalSteps == 0) return;
        String length = config.steps() != null ? "steps " + totalSteps
                : "the run's " + totalSteps + " optimiser steps (epochs " + config.epochs() + " x " + microPerEpoch
                        + " micro-batches of " + config.batchSize() + " samples / gradientAccumulation "
                        + config.gradientAccumulation() + ")";
        throw new IllegalArgumentException(config.recipe() + ": schedule.warmupSteps: is " + warmupSteps + ", not below "
                + length + "; the warm-up would never finish");
    }

    private LrSchedule schedule(long totalSteps) {
        if (config.schedule() instanceof StageConfig.WarmupCosine c) {
            return LrSchedule.warmupCosine(c.initLr(), c.minLr(), c.warmupStartLr(), c.warmupSteps(), totalSteps);
        }
        StageConfig.WarmupHoldDecay d = (StageConfig.WarmupHoldDecay) config.schedule();
        return LrSchedule.warmupHoldDecay(d.peakLr(), d.warmupSteps(), d.holdSteps(), d.decaySteps(), d.finalLr());
    }
}
