using System.Text.Json.Nodes;

namespace Grpc.Backup.Qemu.Internal;

/// <summary>The <c>block-dirty-bitmap-*</c> transaction actions snapshot access uses.</summary>
internal static class BitmapActions
{
    public static QmpTransactionAction Add(string node, string name, bool persistent, long? granularity = null)
    {
        var data = new JsonObject { ["node"] = node, ["name"] = name, ["persistent"] = persistent };
        if (granularity is > 0)
        {
            data["granularity"] = granularity;
        }

        return new QmpTransactionAction("block-dirty-bitmap-add", data);
    }

    public static QmpTransactionAction Remove(string node, string name) => Simple("block-dirty-bitmap-remove", node, name);

    public static QmpTransactionAction Clear(string node, string name) => Simple("block-dirty-bitmap-clear", node, name);

    public static QmpTransactionAction Enable(string node, string name) => Simple("block-dirty-bitmap-enable", node, name);

    public static QmpTransactionAction Disable(string node, string name) => Simple("block-dirty-bitmap-disable", node, name);

    /// <summary><paramref name="target"/> |= <paramref name="source"/>.</summary>
    public static QmpTransactionAction Merge(string node, string target, string source)
        => new("block-dirty-bitmap-merge", new JsonObject { ["node"] = node, ["target"] = target, ["bitmaps"] = new JsonArray(source) });

    private static QmpTransactionAction Simple(string type, string node, string name)
        => new(type, new JsonObject { ["node"] = node, ["name"] = name });
}
