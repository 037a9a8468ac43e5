package xllm.x2l;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import xllm.tensor.TrainableParameter;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The paper's C-Former (§3.1, Fig. 1): CIF integrate-and-fire turns the speech encoder's frames into one vector per
 * token, and a transformer refines that token sequence. The CIF weights come with the stage-1 ASR model and stay
 * frozen with its encoder ({@code xllm.speech.CifAsrModel#encodeAndFire}); this class is the trainable transformer:
 * a linear input projection from the ASR width d to BERT's width H (they differ: 144 vs 384 at demo size), then a
 * BERT encoder initialised from a BERT checkpoint, as the paper initialises its C-Former transformer.
 *
 * <p>Parameter names: {@code <prefix>.input_proj.{weight,bias}} and {@code <prefix>.<BertModel encoder name>}.
 */
public final class CFormer {

    private final String prefix;
    private final LinearAdapter inputProjection;
    private final BertEncoder bert;

    private CFormer(String prefix, LinearAdapter inputProjection, BertEncoder bert) {
        this.prefix = prefix;
        this.inputProjection = inputProjection;
        this.bert = bert;
    }

    /**
     * @param bertInit a BERT checkpoint dir whose encoder has exactly {@code config}'s shape, or null for BERT's
     *                 random initialisation from {@code seed}
     */
    public static CFormer initialise(String prefix, int tokenWidth, BertEncoder.Config config, Path bertInit, long seed,
                                     NDManager manager) throws IOException {
        BertEncoder bert;
        if (bertInit != null) {
            bert = BertEncoder.fromBert(bertInit, manager);
            if (!bert.config().equals(config)) {
                throw new IllegalArgumentException(bertInit + ": BERT " + bert.config() + " does not have the C-Former "
                        + "shape " + config);
            }
        } else {
            bert = BertEncoder.initialise(config, seed, manager);
        }
        manager.getEngine().setRandomSeed((int) seed);
        LinearAdapter projection = LinearAdapter.initialise(prefix + ".input_proj", tokenWidth, config.hiddenSize(),
                manager, DataType.FLOAT32);
        return new CFormer(prefix, projection, bert);
    }

    public BertEncoder.Config config() {
        return bert.config();
    }

    /** (B, L, d) fired CIF tokens, row b valid up to {@code counts[b]} → (B, L, H). */
    public NDArray forward(NDArray tokens, long[] counts) {
        return bert.forward(inputProjection.forward(tokens), counts);
    }

    public List<TrainableParameter> parameters() {
        List<TrainableParameter> all = new ArrayList<>(inputProjection.parameters());
        all.addAll(bert.parameters(prefix + "."));
        return all;
    }
}
