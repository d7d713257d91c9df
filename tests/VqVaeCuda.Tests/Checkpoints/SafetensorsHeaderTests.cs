using System.Text;
using VqVaeCuda.Checkpoints;
using VqVaeCuda.Tensors;

namespace VqVaeCuda.Tests.Checkpoints;

/// <summary>
/// Malformed safetensors headers, each refused with a <see cref="CheckpointFormatException"/> that names the file and the
/// place at fault: never another exception, never an allocation sized by the header.
/// </summary>
[TestFixture, Category("Cpu")]
public class SafetensorsHeaderTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => Directory.CreateDirectory(_dir = Path.Combine(Path.GetTempPath(), "vqvae-sth-" + Guid.NewGuid().ToString("N")));

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, true);

    /// <summary>A file of an 8-byte length, <paramref name="header"/> as given (not re-encoded), then <paramref name="dataBytes"/> zero bytes.</summary>
    private string File(byte[] header, int dataBytes = 0, ulong? claimedLength = null)
    {
        var path = Path.Combine(_dir, Guid.NewGuid().ToString("N") + ".safetensors");
        var bytes = new byte[8 + header.Length + dataBytes];
        BitConverter.TryWriteBytes(bytes.AsSpan(0, 8), claimedLength ?? (ulong)header.Length);
        header.CopyTo(bytes, 8);
        System.IO.File.WriteAllBytes(path, bytes);
        return path;
    }

    private string File(string header, int dataBytes = 0) => File(Encoding.UTF8.GetBytes(header), dataBytes);

    private static CheckpointFormatException Refused(string path, params string[] mentions)
    {
        var error = Assert.Throws<CheckpointFormatException>(() => Safetensors.Read(path))!;
        Assert.That(error.Message, Does.StartWith(path + ": "), "the message names the file first");
        Assert.That(error.Path, Is.EqualTo(path));
        foreach (var m in mentions) Assert.That(error.Message, Does.Contain(m));
        Assert.That(error, Is.InstanceOf<InvalidInputFileException>(), "the one project exception of readers");
        return error;
    }

    [Test]
    public void A_header_that_is_not_an_object_is_refused() =>
        Refused(File("[1, 2, 3]"), "header", "array", "expected an object");

    [Test]
    public void A_header_that_is_a_bare_string_is_refused() =>
        Refused(File("\"w\""), "header", "string");

    [Test]
    public void A_header_that_is_not_UTF8_is_refused() =>
        Refused(File([(byte)'{', (byte)'"', 0xC3, 0x28, (byte)'"', (byte)':', (byte)'1', (byte)'}']), "UTF-8");

    [Test]
    public void Metadata_with_a_number_is_refused_naming_the_field() =>
        Refused(File("{\"__metadata__\":{\"step\":5}}"), "metadata 'step'", "number", "expected a string");

    [Test]
    public void Metadata_with_null_is_refused_naming_the_field() =>
        Refused(File("{\"__metadata__\":{\"config\":null}}"), "metadata 'config'", "null");

    [Test]
    public void Metadata_that_is_not_an_object_is_refused() =>
        Refused(File("{\"__metadata__\":\"format\"}"), "__metadata__", "expected an object of strings");

    [Test]
    public void A_tensor_named_twice_is_refused() =>
        Refused(File("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8),
                "'w'", "twice");

    [Test]
    public void An_unknown_dtype_is_refused() =>
        Refused(File("{\"w\":{\"dtype\":\"F128\",\"shape\":[1],\"data_offsets\":[0,16]}}", 16), "tensor 'w'", "F128");

    [Test]
    public void Overlapping_tensors_are_refused() =>
        Refused(File("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12),
                "tensor 'b'", "overlap");

    [Test]
    public void A_gap_between_tensors_is_refused() =>
        Refused(File("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12),
                "tensor 'b'", "gap");

    [Test]
    public void Data_after_the_last_tensor_is_refused() =>
        Refused(File("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 12), "8 bytes after the last tensor");

    [Test]
    public void Offsets_past_the_data_are_refused() =>
        Refused(File("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8), "tensor 'a'", "0..16 of 8");

    [Test]
    public void A_shape_of_a_trillion_elements_is_refused_before_anything_is_allocated() =>
        Refused(File("{\"a\":{\"dtype\":\"F32\",\"shape\":[1000000,1000000],\"data_offsets\":[0,4]}}", 4), "tensor 'a'", "4000000000000 bytes");

    [Test]
    public void A_shape_whose_byte_count_overflows_is_refused() =>
        Refused(File("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,4]}}", 4), "tensor 'a'", "more bytes than");

    [Test]
    public void A_negative_dimension_is_refused() =>
        Refused(File("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4), "tensor 'a'", "non-negative");

    [Test]
    public void A_header_length_past_the_end_of_the_file_is_refused() =>
        Refused(File(Encoding.UTF8.GetBytes("{}"), claimedLength: 1UL << 40), "bytes 0..8", "does not fit");

    [Test]
    public void A_header_length_over_the_bound_is_refused_even_when_the_file_is_that_long()
    {
        // 100 MiB + 8 of spaces would be a slow test; the bound is checked on the claimed length, so a sparse file does.
        var path = Path.Combine(_dir, "huge-header.safetensors");
        long headerLength = (100L << 20) + 8;
        using (var f = new FileStream(path, FileMode.Create))
        {
            f.Write(BitConverter.GetBytes((ulong)headerLength));
            f.SetLength(8 + headerLength);
        }
        Refused(path, "over the", "bound");
    }

    [Test]
    public void A_dtype_that_does_not_fit_the_tensors_role_is_refused_naming_the_tensor()
    {
        var path = Path.Combine(_dir, "codes.safetensors");
        Safetensors.Write(path, [SafetensorsTensor.FromFloats("codes", [2], [1f, 2f])]);
        var codes = Safetensors.Read(path).Tensors["codes"];
        var error = Assert.Throws<CheckpointFormatException>(() => codes.ToInts())!;
        Assert.That(error.Message, Does.Contain(path).And.Contain("tensor 'codes'").And.Contain("F32, expected I32"));
    }
}
