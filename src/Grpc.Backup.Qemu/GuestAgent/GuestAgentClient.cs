using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Grpc.Backup.Qemu;

/// <summary>
/// A client for the qemu-guest-agent protocol on the guest's agent socket. Unlike QMP there is no greeting and no
/// request ids, and a previous client may have left a half-read reply behind, so every session starts with
/// <c>guest-sync-delimited</c>: a random id, answered after a 0xFF byte that marks where the fresh reply begins.
/// </summary>
public sealed class GuestAgentClient : IAsyncDisposable
{
    private const int MaxReplyBytes = 1024 * 1024;
    private readonly Socket _socket;
    private readonly SemaphoreSlim _lock = new(1, 1);
    private NetworkStream? _connected;

    private GuestAgentClient(Socket socket)
    {
        _socket = socket;
    }

    private NetworkStream Stream => _connected ?? throw new InvalidOperationException("not connected");

    /// <summary>Connects and synchronises. An agent that does not answer within the token's time fails here.</summary>
    public static async Task<GuestAgentClient> ConnectAsync(string socketPath, CancellationToken cancellationToken)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        var client = new GuestAgentClient(socket);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken);
            client._connected = new NetworkStream(socket, ownsSocket: false);
            await client.SyncAsync(cancellationToken);
            return client;
        }
        catch
        {
            await client.DisposeAsync();
            throw;
        }
    }

    /// <summary>Freezes the guest's filesystems; returns how many were frozen.</summary>
    public async Task<int> FreezeAsync(CancellationToken cancellationToken) =>
        (await ExecuteAsync("guest-fsfreeze-freeze", cancellationToken))?.GetValue<int>() ?? 0;

    /// <summary>Thaws the guest's filesystems; returns how many were thawed.</summary>
    public async Task<int> ThawAsync(CancellationToken cancellationToken) =>
        (await ExecuteAsync("guest-fsfreeze-thaw", cancellationToken))?.GetValue<int>() ?? 0;

    /// <summary>"frozen" or "thawed".</summary>
    public async Task<string> GetFreezeStatusAsync(CancellationToken cancellationToken) =>
        (await ExecuteAsync("guest-fsfreeze-status", cancellationToken))?.GetValue<string>() ?? "";

    /// <summary>Runs one command and returns its <c>return</c> value; an agent error becomes <see cref="QmpCommandException"/>.</summary>
    public async Task<JsonNode?> ExecuteAsync(string command, CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken);
        try
        {
            await WriteAsync(new JsonObject { ["execute"] = command }, cancellationToken);
            JsonObject reply = await ReadReplyAsync(skipToDelimiter: false, cancellationToken);
            if (reply["error"] is JsonObject error)
            {
                throw new QmpCommandException(command, error["class"]?.GetValue<string>() ?? "GenericError",
                    error["desc"]?.GetValue<string>() ?? "");
            }
            return reply["return"];
        }
        finally
        {
            _lock.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_connected is not null)
        {
            await _connected.DisposeAsync();
        }
        _socket.Dispose();
        _lock.Dispose();
    }

    private async Task SyncAsync(CancellationToken cancellationToken)
    {
        long id = Random.Shared.NextInt64(1, long.MaxValue);
        await Stream.WriteAsync(new byte[] { 0xff }, cancellationToken);
        await WriteAsync(new JsonObject { ["execute"] = "guest-sync-delimited", ["arguments"] = new JsonObject { ["id"] = id } },
            cancellationToken);
        // Replies to earlier clients' requests may still be queued; the one that echoes our id is ours.
        for (int attempt = 0; attempt < 16; attempt++)
        {
            JsonObject reply = await ReadReplyAsync(skipToDelimiter: attempt == 0, cancellationToken);
            if (reply["return"] is JsonValue value && value.TryGetValue(out long echoed) && echoed == id)
            {
                return;
            }
        }
        throw new QmpProtocolException("the guest agent did not echo the guest-sync id");
    }

    private async Task WriteAsync(JsonObject request, CancellationToken cancellationToken)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(request.ToJsonString() + "\n");
        await Stream.WriteAsync(bytes, cancellationToken);
    }

    private async Task<JsonObject> ReadReplyAsync(bool skipToDelimiter, CancellationToken cancellationToken)
    {
        var line = new List<byte>();
        byte[] one = new byte[1];
        bool seenDelimiter = !skipToDelimiter;
        while (true)
        {
            if (await Stream.ReadAsync(one, cancellationToken) == 0)
            {
                throw new QmpConnectionClosedException("the guest agent closed the connection");
            }
            if (one[0] == 0xff)
            {
                seenDelimiter = true;
                line.Clear();
                continue;
            }
            if (!seenDelimiter)
            {
                continue;
            }
            if (one[0] == (byte)'\n')
            {
                if (line.Count == 0)
                {
                    continue;
                }
                try
                {
                    return JsonNode.Parse(line.ToArray()) as JsonObject
                        ?? throw new QmpProtocolException("the guest agent sent a reply that is not a JSON object");
                }
                catch (JsonException e)
                {
                    throw new QmpProtocolException("the guest agent sent invalid JSON", e);
                }
            }
            line.Add(one[0]);
            if (line.Count > MaxReplyBytes)
            {
                throw new QmpProtocolException("the guest agent's reply exceeds 1 MiB");
            }
        }
    }
}
