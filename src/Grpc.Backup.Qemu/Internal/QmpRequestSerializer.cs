using System.Buffers;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Grpc.Backup.Qemu.Internal;

/// <summary>Encodes <c>{"execute":...,"arguments":...,"id":...}</c> as one line.</summary>
internal static class QmpRequestSerializer
{
    public static byte[] Serialize(long id, string command, JsonObject? arguments)
    {
        var buffer = new ArrayBufferWriter<byte>(128);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("execute", command);
            if (arguments is not null)
            {
                // Written rather than attached to a request JsonObject: attaching would re-parent the
                // caller's object and make it unusable for a second call.
                writer.WritePropertyName("arguments");
                arguments.WriteTo(writer);
            }

            writer.WriteNumber("id", id);
            writer.WriteEndObject();
        }

        // QEMU's parser is streaming and needs no delimiter, but a newline keeps traces readable.
        buffer.Write("\n"u8);
        return buffer.WrittenSpan.ToArray();
    }
}
