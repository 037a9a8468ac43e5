package xllm.data;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The seeded sentence grammar behind {@link SyntheticSpeech}: short English and Mandarin sentences (about 5-13
 * words or 6-16 characters, so 2-5 s of speech at espeak's 130-190 words per minute) built around the words of
 * {@link SyntheticScenes} — colours, shapes, counts, positions, the scene questions — plus numbers, sums, times and
 * everyday objects so an ASR model trained on it hears more than one domain. Sentences are written in their
 * spoken form: English in lower case, numbers as words, no punctuation; Mandarin as characters without
 * punctuation. Every sentence is a pure function of the random stream handed in.
 */
public final class SpeechSentences {

    static final String[] COLOURS = {"red", "green", "blue", "yellow", "purple", "orange", "black", "white",
            "pink", "brown", "grey"};
    static final String[][] SHAPES = {{"circle", "circles"}, {"square", "squares"}, {"triangle", "triangles"},
            {"star", "stars"}, {"rectangle", "rectangles"}, {"diamond", "diamonds"}, {"heart", "hearts"}};
    static final String[][] OBJECTS = {{"cat", "cats"}, {"dog", "dogs"}, {"bird", "birds"}, {"car", "cars"},
            {"tree", "trees"}, {"house", "houses"}, {"book", "books"}, {"ball", "balls"}, {"cup", "cups"},
            {"chair", "chairs"}, {"table", "tables"}, {"window", "windows"}, {"apple", "apples"},
            {"flower", "flowers"}, {"boat", "boats"}, {"train", "trains"}, {"bus", "buses"}, {"phone", "phones"},
            {"clock", "clocks"}, {"lamp", "lamps"}, {"bottle", "bottles"}, {"box", "boxes"}, {"bag", "bags"},
            {"shoe", "shoes"}, {"hat", "hats"}, {"key", "keys"}, {"picture", "pictures"}, {"door", "doors"},
            {"horse", "horses"}, {"fish", "fish"}, {"bridge", "bridges"}, {"river", "rivers"}, {"pen", "pens"},
            {"spoon", "spoons"}, {"plate", "plates"}, {"ship", "ships"}, {"plane", "planes"}, {"bicycle", "bicycles"},
            {"kite", "kites"}, {"umbrella", "umbrellas"}, {"banana", "bananas"}, {"letter", "letters"},
            {"candle", "candles"}, {"basket", "baskets"}, {"mirror", "mirrors"}, {"pillow", "pillows"}};
    static final String[] POSITIONS = {"in the top left corner", "in the top right corner",
            "in the bottom left corner", "in the bottom right corner", "in the center", "in the middle",
            "on the left", "on the right", "at the top", "at the bottom", "near the edge", "next to the border"};
    static final String[] SIZES = {"small", "large", "big", "tiny", "bright", "dark"};
    static final String[] PLACES = {"on the table", "under the chair", "in the box", "next to the door",
            "behind the house", "near the window", "in the garden", "on the shelf", "by the river", "in the kitchen"};
    static final String[] PEOPLE = {"my brother", "my sister", "the teacher", "our neighbour", "the doctor",
            "a friend of mine", "the little boy", "the old man", "my mother", "the driver"};
    static final String[] ACTIONS = {"is painting", "is looking at", "bought", "found", "dropped", "is holding",
            "carried", "cleaned", "wants", "likes"};
    static final String[] DAYS = {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"};
    static final String[] CITIES = {"london", "paris", "tokyo", "new york", "berlin", "sydney", "toronto", "madrid",
            "rome", "beijing", "shanghai", "cairo", "chicago", "dublin"};
    static final String[] WEATHER = {"sunny", "cloudy", "rainy", "windy", "cold", "warm", "foggy", "hot"};
    static final String[] ORDINALS = {"first", "second", "third", "fourth", "fifth", "next", "last"};
    static final String[] LANDMARKS = {"corner", "traffic light", "church", "school", "station", "bank", "park"};
    static final String[] SCENE_QUESTIONS = {"what colour is the shape", "what colour are the shapes",
            "what shape is it", "what shape are they", "how many shapes are there", "describe the image",
            "write a short caption for the image"};

    private static final String[] ONES = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
            "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
            "eighteen", "nineteen"};
    private static final String[] TENS = {"", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy",
            "eighty", "ninety"};

    static final String[] COLOURS_ZH = {"红色", "绿色", "蓝色", "黄色", "紫色", "橙色", "黑色", "白色", "粉色"};
    static final String[] SHAPES_ZH = {"圆形", "正方形", "三角形", "星形", "长方形"};
    static final String[] POSITIONS_ZH = {"左上角", "右上角", "左下角", "右下角", "中间", "左边", "右边", "上方", "下方"};
    /** Objects with their measure words (只 猫, 辆 汽车, ...). */
    static final String[][] OBJECTS_ZH = {{"猫", "只"}, {"狗", "只"}, {"鸟", "只"}, {"汽车", "辆"}, {"书", "本"},
            {"球", "个"}, {"杯子", "个"}, {"苹果", "个"}, {"花", "朵"}, {"椅子", "把"}, {"盒子", "个"}, {"瓶子", "个"}};
    private static final String[] DIGITS_ZH = {"零", "一", "二", "三", "四", "五", "六", "七", "八", "九", "十"};

    private SpeechSentences() {}

    /** English number words for 0..999 ("three hundred and forty two"). */
    public static String numberWords(int n) {
        if (n < 0 || n > 999) throw new IllegalArgumentException("numberWords covers 0..999, got " + n);
        if (n < 20) return ONES[n];
        if (n < 100) return TENS[n / 10] + (n % 10 == 0 ? "" : " " + ONES[n % 10]);
        String hundreds = ONES[n / 100] + " hundred";
        return n % 100 == 0 ? hundreds : hundreds + " and " + numberWords(n % 100);
    }

    /** Chinese numerals for 0..99 (十二, 二十, 三十五). */
    public static String numberChinese(int n) {
        if (n < 0 || n > 99) throw new IllegalArgumentException("numberChinese covers 0..99, got " + n);
        if (n <= 10) return DIGITS_ZH[n];
        if (n < 20) return "十" + DIGITS_ZH[n % 10];
        return DIGITS_ZH[n / 10] + "十" + (n % 10 == 0 ? "" : DIGITS_ZH[n % 10]);
    }

    /** A count used before a measure word: 两 for 2, as spoken. */
    private static String countChinese(int n) {
        return n == 2 ? "两" : numberChinese(n);
    }

    /** One English sentence in spoken form. */
    public static String english(SplittableRandom r) {
        int template = r.nextInt(28);
        String colour = pick(r, COLOURS);
        String[] shape = pick(r, SHAPES);
        String[] object = pick(r, OBJECTS);
        int count = r.nextInt(2, 10);
        return switch (template) {
            case 0 -> "what colour is the " + pick(r, SIZES) + " " + shape[0] + " " + pick(r, POSITIONS);
            case 1 -> "how many " + colour + " " + shape[1] + " can you see in the picture";
            case 2 -> "there are " + numberWords(count) + " " + pick(r, SIZES) + " " + colour + " " + shape[1] + " "
                    + pick(r, POSITIONS);
            case 3 -> "the " + colour + " " + shape[0] + " is " + pick(r, POSITIONS) + " of the image";
            case 4 -> "where is the " + pick(r, SIZES) + " " + colour + " " + shape[0];
            case 5 -> numberWords(count) + " " + colour + " " + shape[1] + " and " + numberWords(r.nextInt(2, 10))
                    + " " + pick(r, COLOURS) + " " + pick(r, SHAPES)[1];
            case 6 -> "please put the " + colour + " " + object[0] + " " + pick(r, PLACES);
            case 7 -> "i can see " + numberWords(count) + " " + object[1] + " " + pick(r, PLACES);
            case 8 -> "is the " + shape[0] + " " + colour + " or " + other(r, COLOURS, colour);
            case 9 -> "the " + object[0] + " is " + colour + " and the " + pick(r, OBJECTS)[0] + " is "
                    + other(r, COLOURS, colour);
            case 10 -> {
                int a = r.nextInt(1, 50);
                int b = r.nextInt(1, 50);
                yield numberWords(a) + " plus " + numberWords(b) + " equals " + numberWords(a + b);
            }
            case 11 -> "the number on the door is " + numberWords(r.nextInt(100, 1000));
            case 12 -> "the train leaves at " + numberWords(r.nextInt(1, 13)) + " "
                    + pick(r, new String[]{"fifteen", "thirty", "forty five", "twenty", "ten", "o'clock"})
                    + " on " + pick(r, DAYS);
            case 13 -> pick(r, PEOPLE) + " " + pick(r, ACTIONS) + " the " + colour + " " + object[0];
            case 14 -> pick(r, PEOPLE) + " has " + numberWords(count) + " " + colour + " " + object[1];
            case 15 -> pick(r, SCENE_QUESTIONS);
            case 16 -> "draw " + numberWords(count) + " " + shape[1] + " " + pick(r, POSITIONS) + " please";
            case 17 -> "it costs " + numberWords(r.nextInt(2, 100)) + " dollars and "
                    + numberWords(r.nextInt(2, 100)) + " cents";
            case 18 -> "the " + shape[0] + " is " + pick(r, new String[]{"bigger", "smaller", "higher", "lower"})
                    + " than the " + other(r, SHAPES, shape)[0];
            case 19 -> "on " + pick(r, DAYS) + " " + pick(r, PEOPLE) + " saw " + numberWords(count) + " "
                    + object[1];
            case 20 -> "can you tell me how many " + object[1] + " are " + pick(r, PLACES);
            case 21 -> "the weather in " + pick(r, CITIES) + " is " + pick(r, WEATHER) + " on " + pick(r, DAYS);
            case 22 -> "turn " + pick(r, new String[]{"left", "right"}) + " at the " + pick(r, ORDINALS) + " "
                    + pick(r, LANDMARKS) + " and walk " + numberWords(r.nextInt(2, 20)) + " meters";
            case 23 -> pick(r, PEOPLE) + " will arrive in " + numberWords(r.nextInt(2, 60)) + " minutes";
            case 24 -> "is there a " + colour + " " + shape[0] + " " + pick(r, POSITIONS);
            case 25 -> "move the " + pick(r, SIZES) + " " + shape[0] + " to the " + pick(r, new String[]{"left",
                    "right", "top", "bottom", "center"}) + " of the picture";
            case 26 -> "please give me the " + colour + " " + object[0] + " and the " + pick(r, OBJECTS)[0];
            default -> "my " + object[0] + " is " + pick(r, new String[]{"older", "newer", "bigger", "smaller",
                    "cheaper"}) + " than your " + other(r, OBJECTS, object)[0];
        };
    }

    /** One Mandarin sentence (characters, no punctuation). */
    public static String mandarin(SplittableRandom r) {
        int template = r.nextInt(10);
        String colour = pick(r, COLOURS_ZH);
        String shape = pick(r, SHAPES_ZH);
        String position = pick(r, POSITIONS_ZH);
        int count = r.nextInt(1, 10);
        return switch (template) {
            case 0 -> "图中有" + countChinese(count) + "个" + colour + "的" + shape;
            case 1 -> "这个" + shape + "是什么颜色";
            case 2 -> position + "有一个" + colour + "的" + shape;
            case 3 -> "图里一共有几个" + shape;
            case 4 -> colour + "的" + shape + "在图片的" + position;
            case 5 -> "请数一数有多少个" + colour + "的" + shape;
            case 6 -> "我看到了" + countChinese(count) + "个" + shape + "和" + countChinese(r.nextInt(1, 10)) + "个"
                    + other(r, SHAPES_ZH, shape);
            case 7 -> "这个" + shape + "是" + colour + "的吗";
            case 8 -> {
                String[] object = pick(r, OBJECTS_ZH);
                yield "桌子上有" + countChinese(count) + object[1] + object[0];
            }
            default -> {
                int a = r.nextInt(1, 50);
                int b = r.nextInt(1, 50);
                yield numberChinese(a) + "加" + numberChinese(b) + "等于" + numberChinese(a + b);
            }
        };
    }

    static final String[] ANIMALS = {"cat", "dog", "bird", "horse", "spider", "chicken", "cow", "duck", "snake",
            "frog", "sheep", "goat", "pig", "rabbit", "lion", "tiger", "elephant", "monkey", "bee", "ant", "fish",
            "whale", "mouse", "bear"};
    static final String[] COUNTRIES = {"france", "spain", "italy", "germany", "japan", "china", "england", "egypt",
            "russia", "canada", "australia", "ireland", "greece", "portugal", "india", "brazil", "mexico", "kenya"};
    static final String[] COLOURED_THINGS = {"the sky", "the grass", "the sun", "snow", "a banana", "an apple",
            "a lemon", "an orange", "milk", "coal", "a tomato", "a strawberry", "the sea", "a carrot", "chocolate",
            "a cloud", "a leaf", "the moon"};
    static final String[][] TIME_UNITS = {{"days", "week"}, {"hours", "day"}, {"minutes", "hour"},
            {"seconds", "minute"}, {"months", "year"}, {"weeks", "year"}, {"days", "year"}, {"hours", "week"}};
    static final String[] TOOLS = {"pen", "key", "spoon", "knife", "hammer", "umbrella", "phone", "clock", "cup",
            "chair", "bed", "brush", "ladder", "map", "camera", "pillow", "towel", "needle", "oven", "fridge"};
    static final String[] ABILITIES = {"fly", "swim", "climb trees", "run fast", "jump", "sing", "talk"};

    /**
     * Spoken questions the paper's demos ask and this repository answers from speech ({@code data/synthetic/spoken/},
     * docs/asr.md): {@link #question} never draws them, so answering them is answering a question never heard.
     */
    public static final java.util.Set<String> HELD_OUT_QUESTIONS = java.util.Set.of("how many legs does a dog have",
            "how many days are in a week", "what colour is the sky", "which city is the capital of france");

    /** Words a right answer to each held-out question contains (any one). */
    public static final java.util.Map<String, List<String>> HELD_OUT_ANSWERS = java.util.Map.of(
            "how many legs does a dog have", List.of("four", "4"), "how many days are in a week", List.of("seven", "7"),
            "what colour is the sky", List.of("blue"), "which city is the capital of france", List.of("paris"));

    /**
     * One general-knowledge question in spoken form ("how many legs does a cat have", "what is the capital of spain",
     * "what is seven plus five"): the words of the spoken questions an LLM can answer, for stage 2 of the speech
     * interface. Never one of {@link #HELD_OUT_QUESTIONS}.
     */
    public static String question(SplittableRandom r) {
        while (true) {
            String q = anyQuestion(r);
            if (!HELD_OUT_QUESTIONS.contains(q)) return q;
        }
    }

    private static String anyQuestion(SplittableRandom r) {
        String animal = pick(r, ANIMALS);
        String country = pick(r, COUNTRIES);
        return switch (r.nextInt(15)) {
            case 0 -> "how many legs does " + article(animal) + " have";
            case 1 -> "what colour is " + pick(r, COLOURED_THINGS);
            case 2 -> "what is the capital of " + country;
            case 3 -> "which city is the capital of " + country;
            case 4 -> {
                String[] units = pick(r, TIME_UNITS);
                yield "how many " + units[0] + " are in a " + units[1];
            }
            case 5 -> "what sound does " + article(animal) + " make";
            case 6 -> "what is " + numberWords(r.nextInt(1, 21)) + " plus " + numberWords(r.nextInt(1, 21));
            case 7 -> "what is " + numberWords(r.nextInt(2, 13)) + " times " + numberWords(r.nextInt(2, 13));
            case 8 -> "is " + article(animal) + " bigger than " + article(other(r, ANIMALS, animal));
            case 9 -> "can " + article(animal) + " " + pick(r, ABILITIES);
            case 10 -> "what do you use " + article(pick(r, TOOLS)) + " for";
            case 11 -> "where does " + article(animal) + " live";
            case 12 -> "what language do people speak in " + country;
            case 13 -> "what can you see in the sky at " + (r.nextBoolean() ? "night" : "noon");
            default -> "what does " + article(animal) + " eat";
        };
    }

    private static String article(String noun) {
        return ("aeiou".indexOf(noun.charAt(0)) >= 0 ? "an " : "a ") + noun;
    }

    private static <T> T pick(SplittableRandom r, T[] values) {
        return values[r.nextInt(values.length)];
    }

    /** A value different from {@code not}. */
    private static <T> T other(SplittableRandom r, T[] values, T not) {
        List<T> rest = new ArrayList<>(List.of(values));
        rest.remove(not);
        return rest.get(r.nextInt(rest.size()));
    }
}
