using System.Text.Json.Nodes;

namespace Grpc.Backup.Qemu;

/// <summary>
/// One action of a QMP <c>transaction</c>, e.g. type <c>block-dirty-bitmap-add</c> with
/// data <c>{"node":"fmt0","name":"bm"}</c>.
/// </summary>
public sealed class QmpTransactionAction
{
    public QmpTransactionAction(string type, JsonObject? data = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(type);
        Type = type;
        Data = data;
    }

    public string Type { get; }

    public JsonObject? Data { get; }

    internal JsonObject ToJson() => new()
    {
        ["type"] = Type,
        // Copied because a JsonNode can have only one parent, and the caller may reuse Data.
        // QEMU requires "data" even for actions without members (e.g. "abort").
        ["data"] = Data?.DeepClone() ?? new JsonObject(),
    };
}
