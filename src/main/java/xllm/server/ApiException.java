package xllm.server;

/**
 * A request the server refuses, as OpenAI's error body says it: the HTTP status, the error type, a machine code, the
 * request field at fault ({@code messages[0].content[1]}) and a message a person can act on.
 */
final class ApiException extends Exception {

    final int status;
    final String type;
    final String code;
    final String param;

    ApiException(int status, String code, String param, String message) {
        super(message);
        this.status = status;
        this.code = code;
        this.param = param;
        this.type = switch (status) {
            case 401 -> "authentication_error";
            case 429 -> "rate_limit_error";
            default -> status >= 500 ? "server_error" : "invalid_request_error";
        };
    }

    static ApiException badRequest(String param, String message) {
        return new ApiException(400, "invalid_request", param, message);
    }

    static ApiException tooLarge(String param, String message) {
        return new ApiException(413, "too_large", param, message);
    }
}
