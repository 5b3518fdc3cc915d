using System.Collections.Frozen;
using System.Globalization;
using Grpc.Backup.Transport.Internal.Interop;

namespace Grpc.Backup.Transport;

/// <summary>
/// Which peers may use a socket, by uid (protos/README.md, "Endpoints"): by default root and
/// the uid the process runs as; <c>--allow-uid</c> / <c>BACKUP_PROVIDER_ALLOWED_UIDS</c> widen it.
/// </summary>
public sealed class PeerCredentialPolicy
{
    // (uid_t)-1 means "no uid" to the kernel (setresuid's "unchanged"), never a real user.
    private const uint InvalidUid = uint.MaxValue;

    private readonly FrozenSet<uint> _allowed;

    /// <summary>A policy allowing exactly these uids.</summary>
    /// <exception cref="ArgumentException">No uid, or the invalid uid 4294967295.</exception>
    public PeerCredentialPolicy(IEnumerable<uint> allowedUids)
    {
        ArgumentNullException.ThrowIfNull(allowedUids);
        _allowed = allowedUids.ToFrozenSet();
        if (_allowed.Count == 0)
        {
            throw new ArgumentException("A policy must allow at least one uid.", nameof(allowedUids));
        }

        if (_allowed.Contains(InvalidUid))
        {
            throw new ArgumentException($"{InvalidUid} is not a valid uid.", nameof(allowedUids));
        }
    }

    /// <summary>The allowed uids.</summary>
    public IReadOnlyCollection<uint> AllowedUids => _allowed;

    /// <summary>Root and the effective uid of this process.</summary>
    public static PeerCredentialPolicy RootAndCurrentUser() => new([0, Libc.geteuid()]);

    /// <summary>
    /// Parses a comma-separated list of decimal uids such as <c>0,990</c>. Whitespace around an
    /// entry is allowed; empty entries, signs, other characters and values beyond 32 bits are not.
    /// </summary>
    /// <exception cref="FormatException">The text is not such a list; the message names the bad entry.</exception>
    public static PeerCredentialPolicy Parse(string commaSeparatedUids)
    {
        ArgumentNullException.ThrowIfNull(commaSeparatedUids);
        var uids = new List<uint>();
        string[] entries = commaSeparatedUids.Split(',');
        for (int i = 0; i < entries.Length; i++)
        {
            string entry = entries[i].Trim();
            if (entry.Length == 0)
            {
                throw new FormatException($"Allowed uids \"{commaSeparatedUids}\": entry {i + 1} is empty; expected comma-separated decimal uids such as \"0,990\".");
            }

            if (!entry.All(char.IsAsciiDigit)
                || !uint.TryParse(entry, NumberStyles.None, CultureInfo.InvariantCulture, out uint uid)
                || uid == InvalidUid)
            {
                throw new FormatException($"Allowed uids \"{commaSeparatedUids}\": \"{entry}\" is not a uid (a decimal number from 0 to 4294967294).");
            }

            uids.Add(uid);
        }

        return new PeerCredentialPolicy(uids);
    }

    /// <summary>Whether the peer's uid is allowed.</summary>
    public bool IsAllowed(UnixPeerCredentials peer) => _allowed.Contains(peer.UserId);

    /// <inheritdoc/>
    public override string ToString() => string.Join(',', _allowed.Order());
}
