using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Grpc.Backup.DemoGuest;

/// <summary>
/// A guest agent speaking the qemu-guest-agent wire protocol (JSON lines; guest-sync, guest-sync-delimited,
/// guest-ping, guest-fsfreeze-status/-freeze/-thaw). Freezing pauses the writer and appends each disk's sha256 to
/// instants.jsonl: the disks' content at the instant the host switches to copy-before-write.
/// </summary>
internal sealed class GuestAgentServer(string socketPath, GuestWriter writer, string instantsPath, bool hangOnFreeze) : IDisposable
{
    private readonly SemaphoreSlim _stateLock = new(1, 1);
    private bool _frozen;
    private int _freezes;

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(socketPath));
        File.SetUnixFileMode(socketPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        listener.Listen(4);
        while (!cancellationToken.IsCancellationRequested)
        {
            Socket client = await listener.AcceptAsync(cancellationToken);
            _ = ServeAsync(client, cancellationToken);
        }
    }

    private async Task ServeAsync(Socket client, CancellationToken cancellationToken)
    {
        using var _ = client;
        await using var stream = new NetworkStream(client, ownsSocket: false);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        try
        {
            while (await reader.ReadLineAsync(cancellationToken) is { } line)
            {
                // guest-sync-delimited clients prefix requests with 0xFF to flush a partial line; skip it.
                line = line.TrimStart('\u00ff', '\ufffd');
                if (line.Length == 0)
                {
                    continue;
                }
                JsonObject reply = await HandleAsync(line, cancellationToken, out bool delimited);
                byte[] bytes = Encoding.UTF8.GetBytes(reply.ToJsonString() + "\n");
                if (delimited)
                {
                    await stream.WriteAsync(new byte[] { 0xff }, cancellationToken);
                }
                await stream.WriteAsync(bytes, cancellationToken);
            }
        }
        catch (IOException)
        {
        }
        catch (OperationCanceledException)
        {
        }
    }

    private Task<JsonObject> HandleAsync(string line, CancellationToken cancellationToken, out bool delimited)
    {
        delimited = false;
        JsonObject? request;
        try
        {
            request = JsonNode.Parse(line) as JsonObject;
        }
        catch (JsonException)
        {
            request = null;
        }
        string? command = request?["execute"]?.GetValue<string>();
        JsonNode? arguments = request?["arguments"];
        switch (command)
        {
            case "guest-sync":
                return Task.FromResult(Return(arguments?["id"]?.DeepClone()));
            case "guest-sync-delimited":
                delimited = true;
                return Task.FromResult(Return(arguments?["id"]?.DeepClone()));
            case "guest-ping":
                return Task.FromResult(Return(new JsonObject()));
            case "guest-fsfreeze-status":
                return Task.FromResult(Return(_frozen ? "frozen" : "thawed"));
            case "guest-fsfreeze-freeze":
                return FreezeAsync(cancellationToken);
            case "guest-fsfreeze-thaw":
                return ThawAsync(cancellationToken);
            case null:
                return Task.FromResult(Error("GenericError", "Invalid JSON syntax"));
            default:
                return Task.FromResult(Error("CommandNotFound", $"The command {command} has not been found"));
        }
    }

    private async Task<JsonObject> FreezeAsync(CancellationToken cancellationToken)
    {
        if (hangOnFreeze)
        {
            // Models an agent that stops answering: the host must time out, fall back, and still thaw later.
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }
        await _stateLock.WaitAsync(cancellationToken);
        try
        {
            if (_frozen)
            {
                return Error("GenericError", "Command guest-fsfreeze-freeze has been disabled: the agent is in frozen state");
            }
            await writer.PauseAsync(cancellationToken);
            _frozen = true;
            var (disks, mebibytes) = writer.HashAll();
            var instant = new JsonObject
            {
                ["freeze"] = ++_freezes,
                ["time"] = DateTimeOffset.UtcNow.ToString("O"),
                ["writes"] = writer.Writes,
                ["disks"] = new JsonObject(disks.Select(p => KeyValuePair.Create(p.Key, (JsonNode?)p.Value))),
                ["mebibytes"] = new JsonObject(mebibytes.Select(p => KeyValuePair.Create(p.Key, (JsonNode?)new JsonArray([.. p.Value.Select(h => (JsonNode?)h)])))),
            };
            await File.AppendAllTextAsync(instantsPath, instant.ToJsonString() + "\n", cancellationToken);
            return Return(writer.DiskCount);
        }
        finally
        {
            _stateLock.Release();
        }
    }

    private async Task<JsonObject> ThawAsync(CancellationToken cancellationToken)
    {
        await _stateLock.WaitAsync(cancellationToken);
        try
        {
            if (!_frozen)
            {
                return Return(0);
            }
            _frozen = false;
            writer.Resume();
            return Return(writer.DiskCount);
        }
        finally
        {
            _stateLock.Release();
        }
    }

    private static JsonObject Return(JsonNode? value) => new() { ["return"] = value };

    private static JsonObject Error(string errorClass, string description) =>
        new() { ["error"] = new JsonObject { ["class"] = errorClass, ["desc"] = description } };

    public void Dispose() => _stateLock.Dispose();
}
