using System.Diagnostics.CodeAnalysis;
using System.Text.Json.Nodes;

namespace Grpc.Backup.Qemu.Internal;

/// <summary>Interprets the three kinds of server messages: greeting, reply and event.</summary>
internal static class QmpMessages
{
    // Year 9999: the last second DateTimeOffset can represent.
    private const long MaxUnixSeconds = 253_402_300_799;

    public static QmpGreeting ParseGreeting(JsonObject message)
    {
        if (message["QMP"] is not JsonObject qmp
            || qmp["version"] is not JsonObject version
            || version["qemu"] is not JsonObject qemu
            || !TryGetInt64(qemu["major"], out long major)
            || !TryGetInt64(qemu["minor"], out long minor)
            || !TryGetInt64(qemu["micro"], out long micro)
            || major is < 0 or > int.MaxValue || minor is < 0 or > int.MaxValue || micro is < 0 or > int.MaxValue)
        {
            throw new QmpProtocolException($"The peer did not send a QMP greeting: {Truncate(message.ToJsonString())}");
        }

        var capabilities = new List<string>();
        if (qmp["capabilities"] is JsonArray array)
        {
            foreach (JsonNode? capability in array)
            {
                if (TryGetString(capability, out string? name))
                {
                    capabilities.Add(name);
                }
            }
        }

        TryGetString(version["package"], out string? package);
        return new QmpGreeting(
            new QmpVersion((int)major, (int)minor, (int)micro, package?.Trim() ?? string.Empty),
            capabilities.AsReadOnly());
    }

    public static bool IsEvent(JsonObject message) => message.ContainsKey("event");

    public static bool IsReply(JsonObject message) => message.ContainsKey("return") || message.ContainsKey("error");

    public static QmpEvent ParseEvent(JsonObject message)
    {
        if (!TryGetString(message["event"], out string? name) || name.Length == 0)
        {
            throw new QmpProtocolException("The QMP peer sent an event without a name.");
        }

        JsonObject data;
        switch (message["data"])
        {
            case null:
                data = [];
                break;
            case JsonObject value:
                // Detached so subscribers may move it into their own JSON trees.
                message.Remove("data");
                data = value;
                break;
            default:
                throw new QmpProtocolException($"The QMP event {name} has data that is not an object.");
        }

        return new QmpEvent(name, data, ParseTimestamp(message["timestamp"]));
    }

    /// <summary>Gets the id we assigned to the request. QEMU echoes it verbatim.</summary>
    public static bool TryGetId(JsonObject reply, out long id) => TryGetInt64(reply["id"], out id);

    public static JsonNode? DetachReturn(JsonObject reply)
    {
        reply.TryGetPropertyValue("return", out JsonNode? result);
        reply.Remove("return");
        return result;
    }

    /// <summary>Returns the exception for an error reply, or null if the reply is a success.</summary>
    public static QmpCommandException? GetError(JsonObject reply, string command)
    {
        if (!reply.TryGetPropertyValue("error", out JsonNode? error))
        {
            return null;
        }

        if (error is not JsonObject errorObject
            || !TryGetString(errorObject["class"], out string? errorClass)
            || !TryGetString(errorObject["desc"], out string? description))
        {
            throw new QmpProtocolException($"The QMP peer sent a malformed error reply: {Truncate(reply.ToJsonString())}");
        }

        return new QmpCommandException(command, errorClass, description);
    }

    public static string Truncate(string text) => text.Length <= 200 ? text : string.Concat(text.AsSpan(0, 200), "...");

    private static DateTimeOffset ParseTimestamp(JsonNode? timestamp)
    {
        // QEMU sends {"seconds":-1,"microseconds":-1} if it could not read the clock.
        if (timestamp is JsonObject value
            && TryGetInt64(value["seconds"], out long seconds)
            && TryGetInt64(value["microseconds"], out long microseconds)
            && seconds is >= 0 and <= MaxUnixSeconds
            && microseconds is >= 0 and < 1_000_000)
        {
            return DateTimeOffset.FromUnixTimeSeconds(seconds).AddTicks(microseconds * TimeSpan.TicksPerMicrosecond);
        }

        return DateTimeOffset.MinValue;
    }

    private static bool TryGetInt64(JsonNode? node, out long value)
    {
        if (node is JsonValue jsonValue && jsonValue.TryGetValue(out value))
        {
            return true;
        }

        value = 0;
        return false;
    }

    private static bool TryGetString(JsonNode? node, [NotNullWhen(true)] out string? value)
    {
        if (node is JsonValue jsonValue && jsonValue.TryGetValue(out value))
        {
            return true;
        }

        value = null;
        return false;
    }
}
