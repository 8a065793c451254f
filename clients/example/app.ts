// A volunteer's app in a few lines, type-checked against the generated types (make clients):
// sign in, upload a photo, send a tip with it, check in on a patrol, read nearby stations.
// No casts: if the API changes shape, `tsc --noEmit` fails here first.
import createClient from "openapi-fetch";
import type { paths } from "../qunfang.d.ts";

const api = createClient<paths>({ baseUrl: "http://localhost:5000" });

function must<T>(data: T | undefined, what: string): T {
  if (data === undefined) throw new Error(`${what} failed`);
  return data;
}

export async function volunteerDay(phone: string, password: string, photo: Blob) {
  const login = await api.POST("/api/v1/auth/login", { body: { phone, password } });
  const tokens = must(login.data, "sign in");
  const headers = { Authorization: `Bearer ${tokens.access_token}` };

  const upload = await api.POST("/api/v1/media", {
    headers,
    body: { file: photo },
    bodySerializer(body) {
      const form = new FormData();
      form.append("file", body.file);
      return form;
    },
  });
  const media = must(upload.data, "photo upload");

  const tip = await api.POST("/api/v1/tips", {
    headers,
    body: {
      category: "public_safety",
      description: "路口的井盖松动了",
      location: { lon: 116.4854, lat: 39.9484 },
      media_ids: [media.id],
    },
  });
  const created = must(tip.data, "tip");

  const started = await api.POST("/api/v1/patrols", { headers, body: { kind: "walk_along" } });
  const patrol = must(started.data, "patrol start");
  const checkIn = await api.POST("/api/v1/patrols/{patrol_id}/checkins", {
    headers,
    params: { path: { patrol_id: patrol.id } },
    body: {
      items: [
        {
          client_id: crypto.randomUUID(),
          recorded_at: new Date().toISOString(),
          location: { lon: 116.4854, lat: 39.9484 },
        },
      ],
    },
  });
  const outcomes = must(checkIn.data, "check-in").items.map((item) => item.outcome);

  const nearby = await api.GET("/api/v1/stations/nearby", {
    params: { query: { lon: 116.4854, lat: 39.9484, radius_m: 2000 } },
  });
  // The answer is JSON or, with `Accept: application/geo+json`, a FeatureCollection.
  const answer = must(nearby.data, "nearby stations");
  const stations =
    "items" in answer
      ? answer.items.map((station) => `${station.name}: ${station.distance_m ?? "?"} m`)
      : answer.features.map((feature) => `${feature.properties.name}`);

  return { tip: created.id, outcomes, stations, photo: `${media.width}x${media.height}` };
}
