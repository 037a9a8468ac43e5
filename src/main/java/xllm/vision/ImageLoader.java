package xllm.vision;

import org.w3c.dom.Node;
import xllm.tensor.InputFile;

import javax.imageio.IIOException;
import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.event.IIOReadWarningListener;
import javax.imageio.metadata.IIOMetadata;
import javax.imageio.metadata.IIOMetadataNode;
import javax.imageio.stream.ImageInputStream;
import java.awt.color.ColorSpace;
import java.awt.image.BufferedImage;
import java.awt.image.Raster;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;

/**
 * Decodes an image file into an 8-bit sRGB {@link BufferedImage} ({@code TYPE_INT_RGB}), the input of
 * {@link ImageTransforms}. Formats: JPEG (baseline and progressive; YCbCr, grayscale, and CMYK/YCCK through
 * TwelveMonkeys' {@code imageio-jpeg}), WebP (lossy and lossless, first frame, through TwelveMonkeys'
 * {@code imageio-webp}), and the JDK's PNG (8/16-bit, gray, palette, alpha), BMP, GIF (first frame). HEIC/AVIF
 * and anything else are refused with a message naming the file.
 *
 * <p>Conversion matches PIL's {@code Image.convert("RGB")}: gray samples are copied to R, G and B unchanged (no
 * gamma conversion, which {@code Graphics.drawImage} and {@code getRGB} would apply to Java's linear gray colour
 * space), alpha is dropped without compositing. CMYK/YCCK JPEGs are converted to RGB by TwelveMonkeys: without an
 * embedded ICC profile by the naive formula {@code R = (255 − C)(255 − K) / 255}, which is PIL's (within a level);
 * with one, through the profile, which PIL's {@code convert("RGB")} ignores (colours then differ from a PIL
 * pipeline's). A JPEG's EXIF orientation (tag 0x0112, values 2..8) is applied, as
 * {@code PIL.ImageOps.exif_transpose} does.
 *
 * <p>Failures are {@link IOException}s naming the file and the problem: empty file, unrecognised or unsupported
 * format, dimensions above the pixel limit (read from the header before any pixel is decoded, against
 * decompression bombs), truncated or corrupt data (decoder warnings such as libjpeg's "premature end of file",
 * which ImageIO only reports to listeners and would otherwise paint grey, are errors here).
 * Tested by {@code ImageLoaderTest}.
 */
public final class ImageLoader {

    /** Default pixel limit: 40 megapixels (a 7,300 × 5,500 photo), far above what a 224-pixel encoder needs. */
    public static final long DEFAULT_MAX_PIXELS = 40_000_000L;

    private static final int EXIF_ORIENTATION_TAG = 0x0112;

    private ImageLoader() {}

    /** Loads with the default 40-megapixel limit. */
    public static BufferedImage load(Path file) throws IOException {
        return load(file, DEFAULT_MAX_PIXELS);
    }

    public static BufferedImage load(Path file, long maxPixels) throws IOException {
        InputFile.require(file, "image", null);
        if (Files.size(file) == 0) {
            throw new IOException(file + ": empty file (0 bytes)");
        }
        try (ImageInputStream input = ImageIO.createImageInputStream(file.toFile())) {
            if (input == null) {
                throw new IOException(file + ": cannot open an image stream");
            }
            Iterator<ImageReader> readers = ImageIO.getImageReaders(input);
            if (!readers.hasNext()) {
                throw new IOException(file + ": unrecognised or unsupported image format (JPEG, PNG, WebP, BMP, GIF "
                        + "are read; HEIC/AVIF need a decoder xllm does not include)");
            }
            ImageReader reader = readers.next();
            try {
                reader.setInput(input, true, false);
                String format = reader.getFormatName();
                // step 1: dimensions from the header only, before any pixel is decoded
                long width = reader.getWidth(0);
                long height = reader.getHeight(0);
                if (width <= 0 || height <= 0) {
                    throw new IOException(file + ": invalid dimensions " + width + "x" + height);
                }
                if (width * height > maxPixels) {
                    throw new IOException(file + ": " + width + "x" + height + " = " + width * height
                            + " pixels exceeds the limit of " + maxPixels + " (possible decompression bomb)");
                }
                // step 2: decode the first frame; decoder warnings (truncated data) are errors
                List<String> warnings = new ArrayList<>();
                reader.addIIOReadWarningListener(new IIOReadWarningListener() {
                    @Override
                    public void warningOccurred(ImageReader source, String warning) {
                        // TwelveMonkeys' JPEG reader notes a CMYK file without (or with a bad) ICC profile; the
                        // pixels are intact, converted with the naive formula
                        if (!warning.contains("ICC")) {
                            warnings.add(warning);
                        }
                    }
                });
                BufferedImage decoded = reader.read(0);
                if (!warnings.isEmpty()) {
                    throw new IOException(file + ": corrupt or truncated " + format + " data: " + warnings.get(0));
                }
                BufferedImage rgb = toRgb(decoded, file);
                // step 3: EXIF orientation (JPEG only)
                if (format.equalsIgnoreCase("jpeg")) {
                    int orientation = exifOrientation(reader.getImageMetadata(0));
                    rgb = orient(rgb, orientation);
                }
                return rgb;
            } catch (java.io.EOFException e) {
                throw new IOException(file + ": truncated " + reader.getFormatName() + " data (unexpected end of file)", e);
            } catch (IIOException e) {
                String detail = e.getMessage() + (e.getCause() != null ? " (" + e.getCause().getMessage() + ")" : "");
                throw new IOException(file + ": corrupt or truncated image, cannot decode: " + detail, e);
            } catch (IndexOutOfBoundsException | IllegalArgumentException | IllegalStateException e) {
                // some JDK decoders throw runtime exceptions on malformed headers
                throw new IOException(file + ": corrupt image: " + e, e);
            } finally {
                reader.dispose();
            }
        } catch (IOException e) {
            if (e.getMessage() != null && e.getMessage().startsWith(file.toString())) {
                throw e;
            }
            throw new IOException(file + ": " + e, e);
        }
    }

    /** Any decoded image → TYPE_INT_RGB with PIL's convert("RGB") semantics. */
    static BufferedImage toRgb(BufferedImage image, Path file) throws IOException {
        int width = image.getWidth();
        int height = image.getHeight();
        BufferedImage rgb = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        int[] row = new int[width];
        ColorSpace colorSpace = image.getColorModel().getColorSpace();
        Raster raster = image.getRaster();
        if (colorSpace.getType() == ColorSpace.TYPE_GRAY) {
            // gray samples copied unchanged (16-bit keeps the high byte)
            int bits = image.getColorModel().getComponentSize(0);
            int[] samples = new int[width];
            for (int y = 0; y < height; y++) {
                raster.getSamples(0, y, width, 1, 0, samples);
                for (int x = 0; x < width; x++) {
                    int gray = bits == 8 ? samples[x]
                            : bits > 8 ? samples[x] >>> (bits - 8)
                            : samples[x] * 255 / ((1 << bits) - 1); // 1/2/4-bit gray PNG
                    row[x] = gray << 16 | gray << 8 | gray;
                }
                rgb.setRGB(0, y, width, 1, row, 0, width);
            }
            return rgb;
        }
        if (colorSpace.getType() != ColorSpace.TYPE_RGB) {
            throw new IOException(file + ": unsupported colour space (type " + colorSpace.getType()
                    + "); convert the image to RGB");
        }
        for (int y = 0; y < height; y++) {
            image.getRGB(0, y, width, 1, row, 0, width);
            for (int x = 0; x < width; x++) {
                row[x] &= 0xFFFFFF; // alpha dropped, not composited (PIL convert("RGB"))
            }
            rgb.setRGB(0, y, width, 1, row, 0, width);
        }
        return rgb;
    }

    /** EXIF orientation from the JPEG's APP1 segment; 1 (as stored) when absent or unreadable. */
    static int exifOrientation(IIOMetadata metadata) {
        if (metadata == null) {
            return 1;
        }
        Node root;
        try {
            root = metadata.getAsTree("javax_imageio_jpeg_image_1.0");
        } catch (IllegalArgumentException e) {
            return 1;
        }
        for (Node markers = root.getFirstChild(); markers != null; markers = markers.getNextSibling()) {
            if (!markers.getNodeName().equals("markerSequence")) {
                continue;
            }
            for (Node marker = markers.getFirstChild(); marker != null; marker = marker.getNextSibling()) {
                if (marker instanceof IIOMetadataNode node && marker.getNodeName().equals("unknown")
                        && "225".equals(node.getAttribute("MarkerTag"))
                        && node.getUserObject() instanceof byte[] app1) {
                    int orientation = orientationFromApp1(app1);
                    if (orientation != 0) {
                        return orientation;
                    }
                }
            }
        }
        return 1;
    }

    /** Parses "Exif\0\0" + TIFF header + IFD0 for tag 0x0112; 0 when not found. */
    static int orientationFromApp1(byte[] app1) {
        if (app1.length < 14 || app1[0] != 'E' || app1[1] != 'x' || app1[2] != 'i' || app1[3] != 'f') {
            return 0;
        }
        int tiff = 6;
        ByteBuffer buffer = ByteBuffer.wrap(app1);
        if (app1[tiff] == 'I' && app1[tiff + 1] == 'I') {
            buffer.order(ByteOrder.LITTLE_ENDIAN);
        } else if (app1[tiff] == 'M' && app1[tiff + 1] == 'M') {
            buffer.order(ByteOrder.BIG_ENDIAN);
        } else {
            return 0;
        }
        long ifd0 = tiff + (buffer.getInt(tiff + 4) & 0xFFFFFFFFL);
        if (ifd0 + 2 > app1.length) {
            return 0;
        }
        int entries = buffer.getShort((int) ifd0) & 0xFFFF;
        for (int i = 0; i < entries; i++) {
            int entry = (int) ifd0 + 2 + 12 * i;
            if (entry + 12 > app1.length) {
                return 0;
            }
            if ((buffer.getShort(entry) & 0xFFFF) == EXIF_ORIENTATION_TAG) {
                int value = buffer.getShort(entry + 8) & 0xFFFF;
                return value >= 1 && value <= 8 ? value : 0;
            }
        }
        return 0;
    }

    /** Applies an EXIF orientation (1..8) so the result is upright. */
    static BufferedImage orient(BufferedImage image, int orientation) {
        if (orientation <= 1 || orientation > 8) {
            return image;
        }
        int width = image.getWidth();
        int height = image.getHeight();
        boolean swap = orientation >= 5;
        BufferedImage out = new BufferedImage(swap ? height : width, swap ? width : height, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < width; x++) {
                int targetX;
                int targetY;
                switch (orientation) {
                    case 2 -> { targetX = width - 1 - x; targetY = y; }              // mirror horizontal
                    case 3 -> { targetX = width - 1 - x; targetY = height - 1 - y; } // rotate 180
                    case 4 -> { targetX = x; targetY = height - 1 - y; }             // mirror vertical
                    case 5 -> { targetX = y; targetY = x; }                          // transpose
                    case 6 -> { targetX = height - 1 - y; targetY = x; }             // rotate 90 clockwise
                    case 7 -> { targetX = height - 1 - y; targetY = width - 1 - x; } // transverse
                    default -> { targetX = y; targetY = width - 1 - x; }             // 8: rotate 90 counter-clockwise
                }
                out.setRGB(targetX, targetY, image.getRGB(x, y));
            }
        }
        return out;
    }
}
