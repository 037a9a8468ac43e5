package xllm;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.lang.ArchRule;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static com.tngtech.archunit.library.Architectures.layeredArchitecture;
import static com.tngtech.archunit.library.dependencies.SlicesRuleDefinition.slices;

/**
 * The layers of DESIGN.md §2, checked on the compiled main classes: imports only go downward, so inference (serve →
 * model → x2l / vision / speech → llm → tensor) never reaches training code, and no two packages depend on each
 * other in a cycle.
 */
class ArchitectureTest {

    private static JavaClasses classes;

    @BeforeAll
    static void importMainClasses() {
        classes = new ClassFileImporter().withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS).importPackages("xllm");
    }

    @Test
    void layersOnlyDependDownward() {
        ArchRule layers = layeredArchitecture().consideringOnlyDependenciesInLayers()
                .layer("serve").definedBy("xllm.serve..")
                .layer("server").definedBy("xllm.server..")
                .layer("eval").definedBy("xllm.eval..")
                .layer("train").definedBy("xllm.train..")
                .layer("data").definedBy("xllm.data..")
                .layer("model").definedBy("xllm.model..")
                .layer("x2l").definedBy("xllm.x2l..")
                .layer("modalities").definedBy("xllm.vision..", "xllm.speech..")
                .layer("llm").definedBy("xllm.llm..")
                .layer("hub").definedBy("xllm.hub..")
                .layer("tensor").definedBy("xllm.tensor..")
                .whereLayer("serve").mayNotBeAccessedByAnyLayer()
                .whereLayer("server").mayOnlyBeAccessedByLayers("serve")
                .whereLayer("eval").mayOnlyBeAccessedByLayers("serve")
                .whereLayer("train").mayOnlyBeAccessedByLayers("serve", "eval")
                .whereLayer("data").mayOnlyBeAccessedByLayers("serve", "eval", "train")
                .whereLayer("model").mayOnlyBeAccessedByLayers("serve", "server", "eval", "train", "data")
                .whereLayer("x2l").mayOnlyBeAccessedByLayers("serve", "eval", "train", "data", "model")
                .whereLayer("modalities").mayOnlyBeAccessedByLayers("serve", "eval", "train", "data", "model", "x2l",
                        "modalities")
                .whereLayer("llm").mayOnlyBeAccessedByLayers("serve", "server", "eval", "train", "data", "model")
                .whereLayer("hub").mayOnlyBeAccessedByLayers("serve", "server", "eval", "train", "data", "model");
        layers.check(classes);
    }

    @Test
    void inferenceNeverImportsTraining() {
        noClasses().that().resideInAnyPackage("xllm.server..", "xllm.model..", "xllm.x2l..", "xllm.vision..", "xllm.speech..",
                        "xllm.llm..", "xllm.tensor..", "xllm.hub..")
                .should().dependOnClassesThat().resideInAnyPackage("xllm.train..", "xllm.eval..", "xllm.data..")
                .because("the model a user chats with must load without the training engine")
                .check(classes);
    }

    @Test
    void packagesAreFreeOfCycles() {
        slices().matching("xllm.(*)..").should().beFreeOfCycles().check(classes);
    }
}
